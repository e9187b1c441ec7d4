"""The Celery application. Broker and result backend come from settings (REDIS_URL)."""

import os

from celery import Celery
from django.db import DatabaseError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("storefront")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# What the shop's tasks share: acknowledged late (a worker killed mid-task leaves the
# message for another worker) and retried with backoff on database, storage and broker
# hiccups; bad input (a broken photo) is reported by the task, never retried.
TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (DatabaseError, OSError, ConnectionError),
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}
