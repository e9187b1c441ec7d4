"""``{% facet_label "masterCategory" %}``: facet names in templates, from ``catalog.filters``."""

from django import template

from catalog.filters import FACET_LABELS

register = template.Library()


@register.simple_tag
def facet_label(param):
    """How the facet named by query parameter ``param`` is called on the storefront."""
    return FACET_LABELS[param]
