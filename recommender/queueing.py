"""Queueing background work: the one place that sends recommender tasks.

Tasks are sent by name through the Celery app, so this module never imports
recommender.tasks (tasks import the services, never the other way round).

- Embedding: a changed photo is recorded as a PendingEmbedding row in the same
  transaction; after the commit the pending rows are drained in batched tasks.
- Index rebuilds are debounced: the first request of a burst sets a cache marker and
  schedules one rebuild INDEX_REBUILD_DELAY seconds later; later requests fold into it.
  Rebuilds are also spaced: one never starts right after another (see
  :func:`seconds_until_next_rebuild`), so a long burst (a 44k import embedding for
  minutes) leads to a few builds, not one after the other; searches cover vectors
  stored since the last build exactly until then.
- The periodic sweep queues whatever a dead broker or a lost message left behind.
"""

import logging
from collections.abc import Iterable
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from . import refresh
from .models import IndexBuild, PendingEmbedding

logger = logging.getLogger(__name__)

EMBED_TASK = "recommender.tasks.embed_products"
REBUILD_TASK = "recommender.tasks.rebuild_index"
SWEEP_TASK = "recommender.tasks.sweep"
TRAIN_TASK = "recommender.tasks.train_recommender"
REBUILD_PENDING_KEY = "recommender:index-rebuild-pending"
# The rebuild task's hard time limit (recommender.tasks): an unfinished build older than
# this was killed and is not waited for.
REBUILD_TIME_LIMIT = 1560


def send_task(name: str, *args, **options) -> bool:
    """Queue a task without ever failing the caller: with the broker down the work is
    left for the periodic sweep. Returns whether the task was queued (or run eagerly)."""
    try:
        current_app.tasks[name].apply_async(args=args, retry=False, **options)
    except Exception as exc:  # broker unreachable: kombu raises several exception types
        if settings.CELERY_TASK_ALWAYS_EAGER:
            raise
        logger.warning("Could not queue %s (%s); the periodic sweep will pick the work up.", name, exc)
        return False
    return True


def queue_embedding(product_ids: Iterable[int]) -> None:
    """Embed these products once the current transaction commits, in batched tasks.

    The request is a row written in the caller's transaction: a rolled-back save leaves
    nothing to embed, and many saves in one transaction go out together.
    """
    if _record_pending(product_ids):
        transaction.on_commit(send_pending_embeddings)


def _record_pending(product_ids: Iterable[int]) -> int:
    rows = [PendingEmbedding(product_id=int(pk)) for pk in product_ids]
    PendingEmbedding.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def send_pending_embeddings() -> int:
    """Send an embedding task for every batch of pending products; returns how many
    products were queued. Rows whose task could not be sent stay for the sweep."""
    pending = sorted(PendingEmbedding.objects.values_list("product_id", flat=True))
    queued = 0
    for chunk in refresh.batched(pending, settings.EMBED_TASK_SIZE):
        if not send_task(EMBED_TASK, list(chunk)):
            break
        PendingEmbedding.objects.filter(product_id__in=chunk).delete()
        queued += len(chunk)
    return queued


def photos_removed(product_ids: Iterable[int]) -> None:
    """Products lost their photo: drop their vectors now and refresh the index after commit."""
    if refresh.forget_vectors(product_ids):
        transaction.on_commit(request_index_rebuild)


def request_index_rebuild() -> bool:
    """Ask for a rebuild soon; a burst of requests leads to one rebuild.

    Returns True when a rebuild was scheduled by this call. In eager mode the marker only
    spaces rebuilds out (it expires); with workers the rebuild clears it when it starts,
    and its longer timeout covers a lost task.
    """
    eager = settings.CELERY_TASK_ALWAYS_EAGER
    timeout = settings.INDEX_REBUILD_DELAY if eager else settings.INDEX_REBUILD_DELAY * 4 + 60
    if not cache.add(REBUILD_PENDING_KEY, "1", timeout=timeout):
        return False
    if send_task(REBUILD_TASK, countdown=settings.INDEX_REBUILD_DELAY):
        return True
    cache.delete(REBUILD_PENDING_KEY)
    return False


def seconds_until_next_rebuild() -> float:
    """How long the next rebuild should wait so it does not follow the last one straight
    away: at least INDEX_REBUILD_DELAY, and INDEX_REBUILD_SPACING times the last build's
    duration, between the end of one build and the start of the next (so rebuilding takes
    at most a third of a worker's time at the default 2). 0 when it may start now."""
    now = timezone.now()
    running = IndexBuild.objects.filter(
        finished_at=None, started_at__gt=now - timedelta(seconds=REBUILD_TIME_LIMIT)
    )
    if running.exists():  # another worker is building: look again once it may have finished
        return float(settings.INDEX_REBUILD_DELAY)
    last = IndexBuild.objects.exclude(finished_at=None).order_by("-finished_at").first()
    if last is None:
        return 0.0
    gap = max(settings.INDEX_REBUILD_DELAY, last.duration_seconds * settings.INDEX_REBUILD_SPACING)
    return max(0.0, gap - (now - last.finished_at).total_seconds())


def run_requested_rebuild() -> IndexBuild | None:
    """The rebuild a request scheduled; None when there is nothing to index yet, or when it
    came too soon after the last build and was put off (as one rebuild for everything asked
    for until then)."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        wait = seconds_until_next_rebuild()
        if wait > 0:
            # The marker stays while the rebuild waits, so requests keep folding into it.
            cache.set(REBUILD_PENDING_KEY, "1", timeout=int(wait) + settings.INDEX_REBUILD_DELAY * 4 + 60)
            if send_task(REBUILD_TASK, countdown=wait):
                return None
        # Requests arriving from now on need a rebuild after this one.
        cache.delete(REBUILD_PENDING_KEY)
    try:
        return refresh.rebuild_index()
    except refresh.NothingToIndex:
        return None


def sweep() -> dict:
    """Queue whatever was missed (a dead broker, a lost message) and refresh a stale index."""
    missed = refresh.products_needing_embedding()
    if _record_pending(missed):
        send_pending_embeddings()
    stale = refresh.index_is_stale()
    if stale:
        request_index_rebuild()
    return {"queued": len(missed), "index_stale": stale}
