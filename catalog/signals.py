from django.dispatch import Signal

# Sent by the catalogue importer after each committed batch, with ``product_ids``: the
# products created or whose image changed. Bulk writes send no post_save signals.
products_imported = Signal()
