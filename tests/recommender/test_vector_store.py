"""Stored vectors read back exactly as they were stored, whatever the query narrows them
to, on SQLite and on PostgreSQL (where they are read in binary)."""

from datetime import timedelta

import numpy as np
import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from recommender.models import Embedding
from recommender.vector_store import current_embeddings, stored_features
from tests.factories import EmbeddingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored():
    """Five products' vectors, the last two stored an hour after the others."""
    rng = np.random.default_rng(3)
    now = timezone.now()
    rows = []
    for number in range(5):
        cnn, colour = rng.normal(size=16).astype(np.float32), rng.random(8).astype(np.float32)
        embedding = EmbeddingFactory(cnn=cnn, colour=colour)
        when = now + timedelta(hours=1) if number >= 3 else now
        Embedding.objects.filter(pk=embedding.pk).update(updated_at=when)
        rows.append((embedding.product_id, cnn, colour))
    return now, rows


def by_product(ids, cnn, colour):
    return {pk: (cnn[row], colour[row]) for row, pk in enumerate(ids.tolist())}


def test_every_stored_vector_reads_back_bit_for_bit(stored):
    _, rows = stored
    ids, cnn, colour = stored_features()

    assert cnn.dtype == colour.dtype == np.float32 and cnn.shape == (5, 16) and colour.shape == (5, 8)
    found = by_product(ids, cnn, colour)
    assert sorted(found) == sorted(pk for pk, _, _ in rows)
    for pk, expected_cnn, expected_colour in rows:
        assert found[pk][0].tobytes() == expected_cnn.tobytes()
        assert found[pk][1].tobytes() == expected_colour.tobytes()


def test_a_narrowed_query_reads_only_its_rows(stored):
    now, rows = stored
    later = stored_features(current_embeddings().filter(updated_at__gt=now))
    assert sorted(later[0].tolist()) == sorted(pk for pk, _, _ in rows[3:])

    chosen = [rows[0][0], rows[4][0]]
    ids, cnn, _ = stored_features(current_embeddings().filter(product_id__in=chosen))
    assert sorted(ids.tolist()) == sorted(chosen)
    assert by_product(ids, cnn, cnn)[rows[4][0]][0].tobytes() == rows[4][1].tobytes()

    for nothing in (
        current_embeddings().filter(model_name="another-model"),
        current_embeddings().filter(product_id__in=[]),
    ):
        ids, cnn, colour = stored_features(nothing)
        assert len(ids) == 0 and cnn.shape == colour.shape == (0, 0)


def test_vectors_stored_in_the_open_transaction_are_read():
    with transaction.atomic():
        embedding = EmbeddingFactory(cnn=np.arange(16), colour=np.arange(8))
        ids, cnn, _ = stored_features()
        assert ids.tolist() == [embedding.product_id] and cnn[0].tolist() == list(range(16))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the binary read is PostgreSQL's")
def test_a_failing_binary_read_raises_djangos_database_error(stored):
    queryset = current_embeddings().extra(where=["1/0 = 1"])  # division by zero in the database
    with pytest.raises(DatabaseError), transaction.atomic():
        stored_features(queryset)
