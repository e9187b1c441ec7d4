"""Celery tasks: one more interface that calls the services. Each is idempotent,
acknowledged late (a worker killed mid-task leaves the message for another worker),
retried with backoff and bounded in time. Sending them is recommender.queueing's job."""

import logging
import subprocess
import sys
import threading

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from config.celery import TASK_OPTIONS

from . import active_model, queueing, refresh, training

logger = logging.getLogger(__name__)


@shared_task(name=queueing.EMBED_TASK, soft_time_limit=600, time_limit=660, **TASK_OPTIONS)
def embed_products_task(product_ids):
    """Embed the given products (those whose image changed), then ask for a rebuild."""
    report = refresh.embed_products(product_ids)
    # Also when nothing was new: a worker that died after embedding may have taken the
    # rebuild it asked for with it, and this redelivered task is the next chance.
    if report.embedded or refresh.index_is_stale():
        queueing.request_index_rebuild()
    return report.as_dict()


@shared_task(
    name=queueing.REBUILD_TASK,
    soft_time_limit=queueing.REBUILD_TIME_LIMIT - 60,
    time_limit=queueing.REBUILD_TIME_LIMIT,
    **TASK_OPTIONS,
)
def rebuild_index_task():
    """Rebuild the index from all stored vectors (after a debounced request)."""
    build = queueing.run_requested_rebuild()
    if build is None:
        return None
    return {"build": build.pk, "items": build.item_count, "seconds": round(build.duration_seconds, 3)}


@shared_task(name=queueing.SWEEP_TASK, soft_time_limit=600, time_limit=660, **TASK_OPTIONS)
def sweep():
    """Periodic catch-up (celery beat): embed what was missed and refresh a stale index."""
    return queueing.sweep()


@shared_task(
    name=queueing.TRAIN_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.TRAINING_TIME_LIMIT,
    time_limit=settings.TRAINING_TIME_LIMIT + 60,
)
def train_recommender_task():
    """Train a new version (admin's "Train" button); it is activated only when better.
    Not retried automatically: a refused or failed run is recorded on its version."""
    try:
        report = training.train_recommender()
    except training.TrainingRefused as exc:
        return {"refused": str(exc)}
    return {"version": report.version.pk, "activated": report.activated, "seconds": round(report.seconds, 1)}


@worker_ready.connect
def convert_model_at_start(**kwargs):
    """Web processes only load the converted model and never convert it, so a worker makes
    it as soon as it starts, not at the first embedding task. In a child process: the
    conversion imports TensorFlow, which this long-lived process should not carry."""
    if active_model.model_is_converted():
        return None

    def convert():
        command = [sys.executable, "-m", "django", "prepare_model"]
        result = subprocess.run(command, cwd=settings.BASE_DIR, capture_output=True, text=True)
        if result.returncode:
            logger.error("Could not convert the photo search model: %s", result.stderr[-2000:])
        else:
            logger.info(result.stdout.strip())

    thread = threading.Thread(target=convert, name="prepare-model", daemon=True)
    thread.start()
    return thread
