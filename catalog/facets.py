"""Facet counts and result totals for the catalogue page, cached per catalogue version.

Counting every facet over the whole table costs more the larger the catalogue, so the
counts for each filter combination are kept in the shared cache (and the page keeps the
filter form rendered from them under the same key: hundreds of options are slow to
render). A product saved or deleted (admin, API, import) moves the catalogue to a new
version and older counts are never read again; writes that send no signal (bulk
updates) show within COUNTS_TTL.
"""

import hashlib
import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, QuerySet

from .filters import FACETS
from .models import Product

VERSION_KEY = "catalog:version"
COUNTS_TTL = 5 * 60


@dataclass(frozen=True)
class Summary:
    total: int
    counts: dict[str, list[tuple[str, int]]]
    # The cache key: it changes with the catalogue version and the filters.
    key: str = ""


def facet_counts(queryset: QuerySet[Product]) -> dict[str, list[tuple[str, int]]]:
    """For each facet, the values present in ``queryset`` with their product counts."""
    counts = {}
    for param, field in FACETS.items():
        rows = queryset.exclude(**{field: ""}).values_list(field).annotate(n=Count("pk")).order_by(field)
        counts[param] = [(value, n) for value, n in rows]
    return counts


def summarise(queryset: QuerySet[Product], chosen: dict[str, str]) -> Summary:
    """The total and facet counts of ``queryset``, the products matching ``chosen``."""
    key = _key(chosen)
    summary = cache.get(key)
    if summary is None:
        summary = Summary(total=queryset.count(), counts=facet_counts(queryset), key=key)
        cache.set(key, summary, COUNTS_TTL)
    return summary


def catalogue_changed(**kwargs) -> None:
    """Signal receiver: counts cached so far describe an older catalogue."""
    cache.set(VERSION_KEY, uuid.uuid4().hex, None)


def catalogue_version() -> str:
    """The current catalogue version: cache keys that include it go stale with it."""
    return cache.get(VERSION_KEY) or ""


def _key(chosen: dict[str, str]) -> str:
    version = catalogue_version()
    filters = "&".join(f"{name}={value}" for name, value in sorted(chosen.items()))
    return f"catalog:facets:{version}:{hashlib.sha256(filters.encode()).hexdigest()}"
