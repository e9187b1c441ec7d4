"""Celery tasks. Each is idempotent, acknowledged late (a worker killed mid-task leaves
the message for another worker), retried with backoff and bounded in time."""
from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError

from . import indexing

RETRYABLE = (DatabaseError, OSError, ConnectionError)
TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": RETRYABLE,
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name="recommender.tasks.embed_products", soft_time_limit=600, time_limit=660, **TASK_OPTIONS)
def embed_products_task(product_ids):
    """Embed the given products (those whose image changed), then ask for a rebuild."""
    report = indexing.embed_products(product_ids)
    if report.embedded:
        indexing.request_index_rebuild()
    return report.as_dict()


@shared_task(name="recommender.tasks.rebuild_index", soft_time_limit=1500, time_limit=1560, **TASK_OPTIONS)
def rebuild_index_task():
    """Rebuild the index from all stored vectors."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        # Requests arriving from now on need a rebuild after this one. In eager mode the
        # marker is left to expire instead, so a burst in one process rebuilds once.
        cache.delete(indexing.REBUILD_PENDING_KEY)
    try:
        build = indexing.rebuild_index()
    except ValueError:  # nothing to index yet
        return None
    return {"build": build.pk, "items": build.item_count, "seconds": round(build.duration_seconds, 3)}


@shared_task(name="recommender.tasks.sweep", soft_time_limit=600, time_limit=660, **TASK_OPTIONS)
def sweep():
    """Periodic catch-up (celery beat): embed what was missed and refresh a stale index."""
    return indexing.sweep()
