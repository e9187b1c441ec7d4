"""Embed products whenever their image is new or changed, however they were saved."""
from django.db.models.signals import post_save
from django.dispatch import receiver

from catalog.models import Product
from catalog.signals import products_imported

from .indexing import queue_embedding


@receiver(post_save, sender=Product)
def embed_saved_product(sender, instance, created, raw=False, **kwargs):
    if raw or not instance.image:
        return
    if created or instance.image_checksum != instance.loaded_image_checksum:
        queue_embedding([instance.pk])


@receiver(products_imported)
def embed_imported_products(sender, product_ids, **kwargs):
    """Bulk imports skip post_save; the importer announces the products it wrote."""
    if product_ids:
        queue_embedding(product_ids)
