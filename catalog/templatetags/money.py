"""``{{ amount|money }}``: how prices and totals are written on every page."""

from django import template
from django.utils.formats import localize

register = template.Library()

CURRENCY_SIGN = "€"


@register.filter
def money(amount):
    """An amount with the shop's currency sign, e.g. "€24.50" (the number formatted as templates do)."""
    return f"{CURRENCY_SIGN}{localize(amount)}"
