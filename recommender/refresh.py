"""Refreshing derived search data: embed changed product photos, drop vectors of removed
photos, rebuild the index, and tell whether the index is stale. Queueing this work as
tasks is recommender.queueing's job; nothing here sends tasks.

Everything here is idempotent: embedding skips images whose checksum already has
vectors for the model, and a rebuild always indexes whatever vectors are stored, so a
task that is run twice, or again after a worker died, does no harm.
"""

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
from django.conf import settings
from django.utils import timezone

from catalog.models import Product, image_checksum

from . import active_model, annoy_index
from .active_model import prepare_photo
from .embedding import VECTOR_RECIPE
from .embedding.pipeline import embed_photo_batches
from .models import Embedding, IndexBuild
from .search_space import active_space
from .vector_store import current_embeddings, current_model_name, stored_vectors

logger = logging.getLogger(__name__)


class IndexBuildFailed(Exception):
    """The stored vectors cannot be indexed (the failed build is recorded)."""


class NothingToIndex(IndexBuildFailed):
    """There are no stored vectors to build an index from yet."""


def batched(iterable: Iterable, size: int) -> Iterator[tuple]:
    """itertools.batched of Python 3.12."""
    iterator = iter(iterable)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


@dataclass
class EmbeddingReport:
    embedded: int = 0
    unchanged: int = 0
    without_image: int = 0
    failed: list = field(default_factory=list)  # [(product id, reason)]

    def as_dict(self):
        return {
            "embedded": self.embedded,
            "unchanged": self.unchanged,
            "without_image": self.without_image,
            "failed": self.failed,
        }


def products_needing_embedding(model_name: str | None = None) -> list[int]:
    """Ids of products with an image but no vectors for its current checksum."""
    model_name = model_name or current_model_name()
    current = current_embeddings(model_name).values_list("product_id", "checksum")
    known = dict(current)
    pending = []
    for pk, checksum in Product.objects.exclude(image="").values_list("pk", "image_checksum").iterator():
        if not checksum or known.get(pk) != checksum:
            pending.append(pk)
    return pending


@dataclass
class _PendingPhoto:
    """A product id of an embedding run, its product (None when it is gone) and the
    checksum its stored vectors were made from (None when it has none)."""

    pk: int
    product: Product | None
    known_checksum: str | None


def _pending_photos(ids, model_name):
    """The ids in batches of EMBED_BATCH_SIZE, each id with its product and stored checksum."""
    for chunk in batched(ids, settings.EMBED_BATCH_SIZE):
        known = dict(
            current_embeddings(model_name).filter(product_id__in=chunk).values_list("product_id", "checksum")
        )
        products = Product.objects.filter(pk__in=chunk).only("pk", "image", "image_checksum").in_bulk()
        yield [_PendingPhoto(pk, products.get(pk), known.get(pk)) for pk in chunk]


def _read_photo(pending):
    """The model input and checksum of a product's photo, or None when its vectors are
    current (or it has no photo). Runs in the threads of the embedding pipeline."""
    product = pending.product
    if product is None or not product.image:
        return None
    if product.image_checksum and pending.known_checksum == product.image_checksum:
        return None
    with product.image.open("rb") as handle:
        data = handle.read()
    checksum = image_checksum(data)
    pixels = prepare_photo(data)
    if pending.known_checksum == checksum:
        return None
    return pixels, checksum


def embed_products(
    product_ids: Iterable[int], progress: Callable[[int], object] | None = None
) -> EmbeddingReport:
    """Compute and store vectors for the given products where their image changed.

    Photos of the next batches are read and prepared while the model runs (see
    recommender.embedding.pipeline). Images that cannot be read are reported, never
    fatal. ``progress`` is an optional callable taking the number of products handled
    since the last call.
    """
    embedder = active_model.get_embedder()
    report = EmbeddingReport()
    ids = sorted(set(int(pk) for pk in product_ids))
    for photos in embed_photo_batches(_pending_photos(ids, embedder.name), _read_photo, embedder):
        rows = []
        now = timezone.now()
        for photo in photos:
            pending = photo.item
            if pending.product is None:
                continue
            if not pending.product.image:
                report.without_image += 1
            elif photo.error is not None:
                report.failed.append((pending.pk, str(photo.error)))
                logger.warning("Cannot embed product %s: %s", pending.pk, photo.error)
            elif not photo.embedded:
                report.unchanged += 1
            else:
                rows.append(
                    Embedding(
                        product_id=pending.pk,
                        model_name=embedder.name,
                        recipe=VECTOR_RECIPE,
                        checksum=photo.detail,
                        cnn=photo.cnn.astype("float32").tobytes(),
                        colour=photo.colour.astype("float32").tobytes(),
                        updated_at=now,
                    )
                )
        if rows:
            Embedding.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["product", "model_name"],
                update_fields=["checksum", "recipe", "cnn", "colour", "updated_at"],
            )
            report.embedded += len(rows)
        if progress:
            progress(len(photos))
    return report


def rebuild_index(model_name: str | None = None, n_trees: int | None = None) -> IndexBuild:
    """Build a new Annoy index from all stored vectors of the model and swap it in.

    Raises NothingToIndex when no vectors are stored and IndexBuildFailed when they cannot
    be indexed together; the failed build is recorded either way.
    """
    model_name = model_name or current_model_name()
    n_trees = n_trees or settings.ANNOY_N_TREES
    build = IndexBuild.objects.create(model_name=model_name, n_trees=n_trees)
    started = time.perf_counter()
    try:
        with annoy_index.build_lock():
            # Vectors stored after this moment are found by exact search until the next build.
            vectors_until = timezone.now()
            space = active_space(model_name)
            try:
                ids, vectors = stored_vectors(current_embeddings(model_name), space)
            except ValueError as exc:  # vectors of different lengths cannot be stacked
                raise IndexBuildFailed(f"the stored vectors cannot be indexed together: {exc}") from exc
            if len(ids) == 0:
                raise NothingToIndex("there are no stored vectors to index yet")
            file_name = annoy_index.write_build(
                build.pk,
                vectors,
                ids,
                n_trees,
                {"model_name": model_name, "vectors_until": vectors_until.isoformat(), **space.as_metadata()},
                rerank=_type_reranking(space, vectors, ids),
            )
    except Exception as exc:
        build.status = IndexBuild.Status.FAILED
        build.error = str(exc)
        build.finished_at = timezone.now()
        build.duration_seconds = time.perf_counter() - started
        build.save()
        raise
    build.status = IndexBuild.Status.READY
    build.item_count = len(ids)
    build.dimensions = int(vectors.shape[1])
    build.vectors_until = vectors_until
    build.file_name = file_name
    build.finished_at = timezone.now()
    build.duration_seconds = time.perf_counter() - started
    build.save()
    logger.info("Index build %s: %s items in %.2fs", build.pk, build.item_count, build.duration_seconds)
    return build


def _type_reranking(space, vectors, ids):
    """The build's re-ranking of stored neighbour lists in a trained space (None otherwise):
    the same rule searches apply to their candidates."""
    if not space.reranks:
        return None
    type_of = dict(Product.objects.filter(pk__in=ids.tolist()).values_list("pk", "article_type"))
    item_types = space.type_numbers([type_of.get(int(pk)) for pk in ids])

    def rerank(items, candidates, similarities):
        types = np.where(candidates >= 0, item_types[np.maximum(candidates, 0)], -1)
        return space.rerank_rows(vectors[items], candidates, similarities, types)

    return rerank


def forget_vectors(product_ids: Iterable[int]) -> int:
    """Delete the vectors of products that lost their photo; returns how many were deleted."""
    return Embedding.objects.filter(product_id__in=list(product_ids)).delete()[0]


def index_is_stale(model_name: str | None = None) -> bool:
    """True when vectors exist that the current index build does not hold, or it holds
    products that have none any more (or no build is usable, or it was built in another
    space than the active version's). Reads every product id with vectors: for the
    periodic sweep and tasks, not for requests."""
    model_name = model_name or current_model_name()
    vectors = current_embeddings(model_name)
    latest = IndexBuild.objects.filter(status=IndexBuild.Status.READY, model_name=model_name).first()
    try:
        index = annoy_index.current_index(model_name)
    except annoy_index.IndexUnavailable:
        return vectors.exists()
    if index.metadata.get("space", model_name) != active_space(model_name).name:
        return vectors.exists()
    if latest is None:
        return vectors.exists()
    if vectors.filter(updated_at__gt=latest.vectors_until).exists():
        return True
    # Vectors stamped before the build began but committed after it read them are in
    # neither the build nor the newer vectors searches merge: the products differ.
    return set(vectors.values_list("product_id", flat=True)) != set(index.positions)
