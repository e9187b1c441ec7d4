from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalogue"

    def ready(self):
        # The tasks module registers the tasks catalog.thumbnails sends by name, in web
        # processes too.
        from . import facets, tasks  # noqa: F401
        from .models import ImportRun, Product
        from .signals import products_imported

        for signal in (post_save, post_delete, products_imported):
            signal.connect(facets.catalogue_changed, sender=Product, dispatch_uid="catalog-facets")
        # An import's bulk updates send no signal; the run it records at the end does.
        post_save.connect(facets.catalogue_changed, sender=ImportRun, dispatch_uid="catalog-facets-import")
