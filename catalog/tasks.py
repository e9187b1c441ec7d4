"""Celery tasks of the catalogue: one more interface that calls the services. Sending
them is catalog.thumbnails' job (by name: services never import tasks)."""

from celery import shared_task

from config.celery import TASK_OPTIONS

from . import thumbnails
from .models import Product


@shared_task(name=thumbnails.MAKE_TASK, soft_time_limit=600, time_limit=660, **TASK_OPTIONS)
def make_thumbnails_task(product_ids):
    """Make the missing thumbnails of these products' photos (after a save or an import)."""
    products = Product.objects.with_photo().filter(pk__in=product_ids)
    report = thumbnails.make_missing_thumbnails(products)
    Product.objects.record_thumbnails(report.ready)
    return report.as_dict()


@shared_task(name=thumbnails.SWEEP_TASK, soft_time_limit=600, time_limit=660, **TASK_OPTIONS)
def sweep_thumbnails():
    """Periodic catch-up (celery beat): queue the thumbnails a lost task or a dead broker
    left unmade. Returns how many products were queued."""
    product_ids = list(Product.objects.needing_thumbnails().values_list("pk", flat=True))
    thumbnails.queue_thumbnails(product_ids)
    return len(product_ids)
