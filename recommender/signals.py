"""Embed products whenever their image is new or changed, however they were saved."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from catalog.models import Product
from catalog.signals import products_imported

from .queueing import photos_removed, queue_embedding


@receiver(post_save, sender=Product)
def embed_saved_product(sender, instance, created, raw=False, **kwargs):
    if raw:
        return
    if not instance.image:
        if instance.loaded_image_checksum:
            photos_removed([instance.pk])  # the photo was removed: it must not match by it
    elif created or instance.image_checksum != instance.loaded_image_checksum:
        queue_embedding([instance.pk])
    instance.loaded_image_checksum = instance.image_checksum


@receiver(products_imported)
def embed_imported_products(sender, product_ids, **kwargs):
    """Bulk imports skip post_save; the importer announces the products it wrote."""
    if product_ids:
        queue_embedding(product_ids)
