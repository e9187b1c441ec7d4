"""``{% product_photo product "card" %}``: a product photo's ``<img>``, from its thumbnails."""

from django import template
from django.utils.html import format_html, format_html_join

from catalog.thumbnails import photo_sources

register = template.Library()


@register.simple_tag
def product_photo(product, size, **attributes):
    """The ``<img>`` of ``product``'s photo at ``size`` (a key of ``PHOTO_SIZES``: "line",
    "tile", "card", "page"), with 1x/2x thumbnails, its box's width and height, the
    product's name as alt text and lazy loading; ``attributes`` (class, alt, loading...)
    are added or replace those. Shows the full photo until its thumbnails are made."""
    if not product.image:
        return ""
    sources = photo_sources(product, size)
    attributes = {
        "class": attributes.pop("class", None),
        "src": sources.src,
        "srcset": sources.srcset or None,
        "width": sources.width,
        "height": sources.height,
        "alt": product.display_name,
        "loading": "lazy",
        **attributes,
    }
    shown = ((name, value) for name, value in attributes.items() if value is not None)
    return format_html("<img{}>", format_html_join("", ' {}="{}"', shown))
