"""Product filtering shared by the storefront list page and the products API."""
from django.db.models import Count

from .models import Product

# Query parameter -> model field, in the order the facets are shown.
FACETS = {
    "gender": "gender",
    "masterCategory": "master_category",
    "subCategory": "sub_category",
    "articleType": "article_type",
    "baseColour": "base_colour",
    "season": "season",
    "usage": "usage",
}
MAX_SEARCH_LENGTH = 100


def filter_products(params, queryset=None):
    """Apply facet filters and a name search (``q``) from a query dict to active products.

    Unknown parameters are ignored; each facet accepts one exact value. The name search
    matches every word of ``q`` (case-insensitive), so "blue jeans" finds "Blue Slim Jeans".
    """
    queryset = Product.objects.visible() if queryset is None else queryset
    for param, field in FACETS.items():
        value = (params.get(param) or "").strip()
        if value:
            queryset = queryset.filter(**{field: value})
    for word in (params.get("q") or "").strip()[:MAX_SEARCH_LENGTH].split():
        queryset = queryset.filter(name__icontains=word)
    return queryset


def active_filters(params):
    """The facet filters and search term present in a query dict."""
    found = {param: params.get(param).strip() for param in FACETS if (params.get(param) or "").strip()}
    if (params.get("q") or "").strip():
        found["q"] = params.get("q").strip()[:MAX_SEARCH_LENGTH]
    return found


def facet_counts(queryset):
    """For each facet, the values present in ``queryset`` with their product counts."""
    counts = {}
    for param, field in FACETS.items():
        rows = queryset.exclude(**{field: ""}).values_list(field).annotate(n=Count("pk")).order_by(field)
        counts[param] = [(value, n) for value, n in rows]
    return counts
