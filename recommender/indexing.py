"""Keeping vectors and the index up to date: embed changed products, rebuild the index.

Everything here is idempotent: embedding skips images whose checksum already has
vectors for the model, and a rebuild always indexes whatever vectors are stored, so a
task that is run twice, or again after a worker died, does no harm.
"""
import logging
import time
from dataclasses import dataclass, field
from itertools import islice

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from catalog.models import Product, image_checksum

from . import index as annoy_index
from .models import Embedding, IndexBuild
from .vectors import current_embeddings, current_model_name, stored_vectors

logger = logging.getLogger(__name__)

REBUILD_PENDING_KEY = "recommender:index-rebuild-pending"


def batched(iterable, size):
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


def products_needing_embedding(model_name=None):
    """Ids of products with an image but no vectors for its current checksum."""
    model_name = model_name or current_model_name()
    current = current_embeddings(model_name).values_list("product_id", "checksum")
    known = dict(current)
    pending = []
    for pk, checksum in Product.objects.exclude(image="").values_list("pk", "image_checksum").iterator():
        if not checksum or known.get(pk) != checksum:
            pending.append(pk)
    return pending


def _image_checksum_and_bytes(product):
    with product.image.open("rb") as handle:
        data = handle.read()
    return image_checksum(data), data


def embed_products(product_ids, progress=None):
    """Compute and store vectors for the given products where their image changed.

    Images that cannot be read are reported, never fatal. ``progress`` is an optional
    callable taking the number of products handled since the last call.
    """
    from .embedding import VECTOR_RECIPE, InvalidImage, colour_descriptor, get_embedder, prepare_image

    embedder = get_embedder()
    report = EmbeddingReport()
    ids = sorted(set(int(pk) for pk in product_ids))
    for chunk in batched(ids, settings.EMBED_BATCH_SIZE):
        known = dict(
            current_embeddings(embedder.name).filter(product_id__in=chunk).values_list(
                "product_id", "checksum"
            )
        )
        products, arrays, checksums = [], [], []
        for product in Product.objects.filter(pk__in=chunk).only("pk", "image", "image_checksum"):
            if not product.image:
                report.without_image += 1
                continue
            if product.image_checksum and known.get(product.pk) == product.image_checksum:
                report.unchanged += 1
                continue
            try:
                checksum, data = _image_checksum_and_bytes(product)
                arrays.append(prepare_image(data))
            except (InvalidImage, OSError) as exc:
                report.failed.append((product.pk, str(exc)))
                logger.warning("Cannot embed product %s: %s", product.pk, exc)
                continue
            if known.get(product.pk) == checksum:
                arrays.pop()
                report.unchanged += 1
                continue
            products.append(product)
            checksums.append(checksum)
        if products:
            cnn = embedder.embed_images(arrays)
            now = timezone.now()
            rows = [
                Embedding(
                    product_id=product.pk,
                    model_name=embedder.name,
                    recipe=VECTOR_RECIPE,
                    checksum=checksum,
                    cnn=vector.astype("float32").tobytes(),
                    colour=colour_descriptor(array).astype("float32").tobytes(),
                    updated_at=now,
                )
                for product, checksum, vector, array in zip(products, checksums, cnn, arrays)
            ]
            Embedding.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["product", "model_name"],
                update_fields=["checksum", "recipe", "cnn", "colour", "updated_at"],
            )
            report.embedded += len(rows)
        if progress:
            progress(len(chunk))
    return report


def rebuild_index(model_name=None, n_trees=None):
    """Build a new Annoy index from all stored vectors of the model and swap it in."""
    model_name = model_name or current_model_name()
    n_trees = n_trees or settings.ANNOY_N_TREES
    build = IndexBuild.objects.create(model_name=model_name, n_trees=n_trees)
    started = time.perf_counter()
    # Vectors stored after this moment are found by exact search until the next build.
    vectors_until = timezone.now()
    try:
        ids, vectors = stored_vectors(current_embeddings(model_name))
        if len(ids) == 0:
            raise ValueError("there are no stored vectors to index yet")
        file_name = annoy_index.write_build(
            build.pk,
            vectors,
            ids,
            n_trees,
            {"model_name": model_name, "vectors_until": vectors_until.isoformat()},
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


def request_index_rebuild():
    """Ask for a rebuild soon; a burst of requests leads to one rebuild.

    The first request of a burst sets a marker and schedules the rebuild
    INDEX_REBUILD_DELAY seconds later; requests while the marker is set are folded into
    that rebuild. Returns True when a rebuild was scheduled by this call.
    """
    from .tasks import rebuild_index_task

    # In eager mode the marker only spaces rebuilds out (nothing clears it); with workers
    # the rebuild task clears it when it starts, and the timeout covers a lost task.
    eager = settings.CELERY_TASK_ALWAYS_EAGER
    timeout = settings.INDEX_REBUILD_DELAY if eager else settings.INDEX_REBUILD_DELAY * 4 + 60
    if not cache.add(REBUILD_PENDING_KEY, "1", timeout=timeout):
        return False
    if send_task(rebuild_index_task, countdown=settings.INDEX_REBUILD_DELAY):
        return True
    cache.delete(REBUILD_PENDING_KEY)
    return False


def send_task(task, *args, **options):
    """Queue a task without ever failing the caller: with the broker down the work is
    left for the periodic sweep. Returns whether the task was queued (or run eagerly)."""
    try:
        task.apply_async(args=args, retry=False, **options)
    except Exception as exc:  # broker unreachable: kombu raises several exception types
        if settings.CELERY_TASK_ALWAYS_EAGER:
            raise
        logger.warning("Could not queue %s (%s); the periodic sweep will pick the work up.", task.name, exc)
        return False
    return True


def forget_vectors(product_ids):
    """Delete the vectors of products that lost their photo, and refresh the index."""
    if Embedding.objects.filter(product_id__in=product_ids).delete()[0]:
        transaction.on_commit(request_index_rebuild)


def queue_embedding(product_ids):
    """Embed these products once the current transaction commits, in batched tasks.

    Saves inside one transaction are gathered, so a bulk change queues a few tasks
    instead of one per product.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _send_embedding_tasks(product_ids)
        return
    pending = connection.__dict__.setdefault("_embedding_pending", set())
    if not any(entry[1] is _flush_pending for entry in connection.run_on_commit):
        pending.clear()  # an earlier transaction rolled back: its ids were never saved
        transaction.on_commit(_flush_pending)
    pending.update(int(pk) for pk in product_ids)


def _flush_pending():
    connection = transaction.get_connection()
    ids = sorted(connection.__dict__.pop("_embedding_pending", set()))
    _send_embedding_tasks(ids)


def _send_embedding_tasks(product_ids):
    from .tasks import embed_products_task

    for chunk in batched(sorted(product_ids), settings.EMBED_BATCH_SIZE):
        send_task(embed_products_task, list(chunk))


def index_is_stale(model_name=None):
    """True when vectors exist that the current index build does not hold (or no build
    is usable)."""
    model_name = model_name or current_model_name()
    vectors = current_embeddings(model_name)
    latest = IndexBuild.objects.filter(status=IndexBuild.Status.READY, model_name=model_name).first()
    try:
        annoy_index.current_index(model_name)
    except annoy_index.IndexUnavailable:
        return vectors.exists()
    if latest is None:
        return vectors.exists()
    return vectors.filter(updated_at__gt=latest.vectors_until).exists()


def sweep():
    """Queue whatever was missed (a dead broker, a lost message) and refresh a stale index."""
    pending = products_needing_embedding()
    if pending:
        _send_embedding_tasks(pending)
    stale = index_is_stale()
    if stale:
        request_index_rebuild()
    return {"queued": len(pending), "index_stale": stale}
