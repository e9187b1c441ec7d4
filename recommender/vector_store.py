"""The vector store: product vectors kept in the database (current model and recipe), the
search vectors made from them, and exact search over a set of them.

A search vector mixes the CNN features and the colour signature of an image
(recommender.embedding.combine, with w = settings.COLOUR_WEIGHT), so its cosine
similarity is (1 - w) * shape + w * colour.
"""

import numpy as np
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connections

from .embedding import VECTOR_RECIPE, combine
from .models import Embedding


def search_vectors(cnn, colour, colour_weight=None):
    """Search vectors (one row each) for CNN and colour vectors (one row each)."""
    weight = settings.COLOUR_WEIGHT if colour_weight is None else colour_weight
    return combine(np.atleast_2d(cnn), np.atleast_2d(colour), weight)


def current_model_name():
    """Name of the model whose vectors are searched (no TensorFlow import)."""
    return settings.EMBEDDING_MODEL


def current_embeddings(model_name=None):
    """Stored vectors of the current model and recipe; any others are stale."""
    return Embedding.objects.filter(model_name=model_name or current_model_name(), recipe=VECTOR_RECIPE)


def stored_features(embeddings=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(product ids, CNN vectors, colour vectors) of stored embeddings, one row each."""
    if embeddings is None:
        embeddings = current_embeddings()
    rows = _rows(embeddings.values_list("product_id", "cnn", "colour"))
    if not rows:
        empty = np.empty((0, 0), dtype=np.float32)
        return np.empty(0, dtype=np.int64), empty, empty
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    cnn = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(len(rows), -1)
    colour = np.frombuffer(b"".join(row[2] for row in rows), dtype=np.float32).reshape(len(rows), -1)
    return ids, cnn, colour


def _rows(queryset) -> list[tuple]:
    """The rows of a values_list queryset, with PostgreSQL's bytea read in binary: as text
    (Django's cursors) it arrives hex-encoded, and decoding it was half of reading every
    vector for an index build."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return list(queryset)
    import psycopg

    try:
        sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:  # e.g. product_id__in=[]: Django asks the database nothing
        return []
    connection.ensure_connection()
    # A server-side binding cursor: Django's own (client-side binding) cannot read binary.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


def stored_vectors(embeddings=None, space=None) -> tuple[np.ndarray, np.ndarray]:
    """(product ids, search vectors) of stored embeddings of the current model, in
    ``space`` (a recommender.search_space.SearchSpace; default: the untrained space)."""
    ids, cnn, colour = stored_features(embeddings)
    if len(ids) == 0:
        return ids, cnn
    return ids, (space.vectors(cnn, colour) if space is not None else search_vectors(cnn, colour))


def exact_neighbours(query, ids, vectors, count):
    """(product id, angular distance) of the ``count`` nearest rows, nearest first.

    Angular distance is Annoy's: sqrt(2 - 2 cos), so exact and Annoy results merge.
    """
    if len(ids) == 0:
        return []
    cosine = vectors @ np.asarray(query, dtype=np.float32)
    count = min(count, len(ids))
    top = np.argpartition(-cosine, count - 1)[:count]
    top = top[np.argsort(-cosine[top], kind="stable")]
    distances = np.sqrt(np.maximum(2.0 - 2.0 * cosine[top], 0.0))
    return [(int(ids[i]), float(d)) for i, d in zip(top, distances)]
