"""Prices for products imported without a price column.

The Fashion Product Images dataset has no prices or stock. A new product gets the usual
price of its article type from this table (other types: ``CATALOG_DEFAULT_PRICE``) and
``CATALOG_DEFAULT_STOCK`` pieces. Re-importing without a price or stock column keeps what
the shop already has, so prices and stock edited in the admin survive a re-import.
"""

from decimal import Decimal

from django.conf import settings

ARTICLE_TYPE_PRICES = {
    "Tshirts": Decimal("19.99"),
    "Tops": Decimal("24.99"),
    "Shirts": Decimal("34.99"),
    "Kurtas": Decimal("29.99"),
    "Sweatshirts": Decimal("39.99"),
    "Sweaters": Decimal("44.99"),
    "Jackets": Decimal("79.99"),
    "Blazers": Decimal("99.00"),
    "Dresses": Decimal("54.99"),
    "Skirts": Decimal("29.99"),
    "Jeans": Decimal("49.99"),
    "Trousers": Decimal("44.99"),
    "Track Pants": Decimal("29.99"),
    "Shorts": Decimal("24.99"),
    "Leggings": Decimal("14.99"),
    "Briefs": Decimal("9.99"),
    "Bra": Decimal("14.99"),
    "Innerwear Vests": Decimal("9.99"),
    "Socks": Decimal("7.99"),
    "Casual Shoes": Decimal("59.99"),
    "Sports Shoes": Decimal("69.99"),
    "Formal Shoes": Decimal("79.99"),
    "Heels": Decimal("49.99"),
    "Flats": Decimal("29.99"),
    "Sandals": Decimal("29.99"),
    "Flip Flops": Decimal("14.99"),
    "Watches": Decimal("129.00"),
    "Handbags": Decimal("59.99"),
    "Backpacks": Decimal("39.99"),
    "Wallets": Decimal("24.99"),
    "Belts": Decimal("19.99"),
    "Caps": Decimal("14.99"),
    "Sunglasses": Decimal("49.99"),
    "Earrings": Decimal("19.99"),
    "Perfume and Body Mist": Decimal("39.99"),
    "Deodorant": Decimal("7.99"),
    "Lipstick": Decimal("12.99"),
    "Nail Polish": Decimal("6.99"),
}


def default_price(article_type: str) -> Decimal:
    """The price given to a new product whose row has no price."""
    return ARTICLE_TYPE_PRICES.get(article_type, settings.CATALOG_DEFAULT_PRICE)


def default_stock() -> int:
    """The stock given to a new product whose row has no stock."""
    return settings.CATALOG_DEFAULT_STOCK
