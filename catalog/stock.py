"""Stock changes: by staff, applied as differences so they never undo sales, and what
cached pages are told of stock that changed by an UPDATE (which sends no signal).

A form (admin change form, admin list) shows the stock as it was when the page loaded
and posts that value back beside the new one. Only the difference the staff member made
is applied, in one conditional UPDATE on the current stock: pieces sold meanwhile stay
sold, and an untouched stock field changes nothing.
"""

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from .availability import shown_exactly_below
from .facets import catalogue_changed
from .models import Product


def adjust_stock(product_id: int, *, by: int) -> int:
    """Add ``by`` pieces (negative: remove) to the current stock, never below zero;
    returns the stock now."""
    if by:
        Product.objects.filter(pk=product_id).update(stock=Greatest(F("stock") + by, 0))
        transaction.on_commit(catalogue_changed)  # it may be buyable again, or no longer
    return Product.objects.filter(pk=product_id).values_list("stock", flat=True).get()


def save_staff_edit(
    product: Product, *, stock_wanted: int | None, stock_loaded: int | None
) -> tuple[int, int]:
    """Save a staff edit of an existing product: every field but the stock as given, and
    the stock changed by what the staff member changed (``stock_wanted - stock_loaded``;
    without ``stock_loaded``, the stock is set to ``stock_wanted`` now; without
    ``stock_wanted`` it is left alone).

    Returns ``(sold or changed meanwhile, stock now)``: the first is how far the stock had
    moved since the form was loaded (0 when nothing happened in between).
    """
    current = Product.objects.filter(pk=product.pk).values_list("stock", flat=True).get()
    loaded = current if stock_loaded is None else stock_loaded
    fields = [f.name for f in Product._meta.concrete_fields if not f.primary_key and f.name != "stock"]
    product.save(update_fields=fields)
    now = adjust_stock(product.pk, by=0 if stock_wanted is None else stock_wanted - loaded)
    product.stock = now
    return loaded - current, now


def pieces_sold(product_ids) -> None:
    """Pieces of these products were taken out of stock (checkout): once that commits,
    cached pages stop showing what changed for shoppers (a sell-out, "Only N left", how
    many one may add); a sale from a large stock changes nothing they see."""
    if Product.objects.filter(pk__in=list(product_ids), stock__lt=shown_exactly_below()).exists():
        transaction.on_commit(catalogue_changed)
