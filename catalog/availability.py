"""The stock policy: whether a product can be bought, how many pieces, and what shoppers are told.

Views, templates, the cart service and the API read ``product.availability`` (this policy)
instead of working it out from ``product.stock``, so the wording and the limits live here
only. Whether a product is sold at all is its ``is_active`` flag (``ProductQuerySet.visible``);
this policy is about its stock.
"""

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

IN_STOCK = "in_stock"
LOW_STOCK = "low_stock"
OUT_OF_STOCK = "out_of_stock"
# From this many pieces down shoppers are told "Only N left".
LOW_STOCK_THRESHOLD = 5


class Stocked(Protocol):
    """What the policy reads of a product (``catalog.models.Product``, which imports this module)."""

    stock: int


@dataclass(frozen=True)
class Availability:
    """What the shop offers of one product.

    ``state`` is a short code templates branch on (``in_stock``, ``low_stock``,
    ``out_of_stock``); ``message`` is the text shown to shoppers.
    """

    is_buyable: bool
    max_quantity: int
    message: str
    state: str


def shown_exactly_below() -> int:
    """The stock below which what shoppers are shown depends on the exact number ("Only N
    left", or how many pieces one cart line may take); above it a sale changes nothing
    they see."""
    return max(settings.CART_MAX_QUANTITY, LOW_STOCK_THRESHOLD + 1)


def availability(product: Stocked) -> Availability:
    """The availability of ``product``: at most its stock, and never more than
    ``CART_MAX_QUANTITY`` pieces in one cart line."""
    stock = product.stock
    if stock <= 0:
        return Availability(is_buyable=False, max_quantity=0, message="Out of stock", state=OUT_OF_STOCK)
    max_quantity = min(stock, settings.CART_MAX_QUANTITY)
    if stock <= LOW_STOCK_THRESHOLD:
        return Availability(
            is_buyable=True, max_quantity=max_quantity, message=f"Only {stock} left", state=LOW_STOCK
        )
    return Availability(is_buyable=True, max_quantity=max_quantity, message="In stock", state=IN_STOCK)
