"""Similar products for a product page: the neighbour list stored with the current index
build, merged with vectors stored since; a search when that list cannot answer; the same
article type and colour before the product has vectors. Never imports TensorFlow."""

import hashlib
from collections.abc import Mapping

from django.conf import settings

from catalog.facets import catalogue_version
from catalog.models import Product

from .neighbours import (
    buyable_in_order,
    filter_products,
    merge_newer_vectors,
    newer_vectors,
    product_vector,
    products_near,
    ranked_buyable,
    result_filters,
    search_results_version,
    serving_space,
)


def similar_products(product: Product, k: int | None = None, filters: Mapping | None = None) -> list[Product]:
    """The k products that look most like ``product`` (never itself; active, in stock)."""
    k = k or settings.SIMILAR_PRODUCTS_COUNT
    space, index = serving_space()
    found = _similar_from_build(space, index, product, k, filters) if index is not None else None
    if found is not None:
        return found
    vector = product_vector(space, product.pk)
    if vector is None:
        return _same_kind_fallback(product, k, filters)
    return products_near(space, index, vector, k, exclude={product.pk}, filters=filters)


def similar_products_key(product_id: int, k: int | None = None, filters: Mapping | None = None) -> str | None:
    """A cache key for what :func:`similar_products` answers now for the product: a
    new catalogue version (any product change or sell-out), build or vectors stored since
    give a new key. None while answers come from exact search."""
    space, index = serving_space()
    if index is None:
        return None
    version = search_results_version(space, index)
    chosen = "&".join(f"{param}={value}" for param, value in sorted(result_filters(filters or {}).items()))
    k = k or settings.SIMILAR_PRODUCTS_COUNT
    digest = hashlib.sha256(f"{version}:{product_id}:{k}:{chosen}".encode()).hexdigest()
    return f"similar:{catalogue_version()}:{digest}"


def _similar_from_build(space, index, product, k, filters):
    """The product's neighbours stored with the current build (already ranked when it was
    built), merged with vectors stored since; None when they cannot answer (the product
    is not in the build or changed since, or too few of them can be bought)."""
    neighbours = index.stored_neighbours(product.pk)
    if neighbours is None:
        return None
    newer = newer_vectors(space, index)
    if product.pk in set(newer[0].tolist()):
        return None
    if len(newer[0]):
        item = index.positions[product.pk]
        vector = index.vector_of_product(product.pk)
        hits = [(pk, index.annoy.get_distance(item, index.positions[pk])) for pk in neighbours]
        hits = merge_newer_vectors(space, index, vector, hits, len(hits), newer)
        found = ranked_buyable(space, vector, hits, {product.pk}, filters)
    else:
        found = _first_buyable(neighbours, k, {product.pk}, filters)
    return found[:k] if len(found) >= k else None


def _first_buyable(ids, k, exclude, filters):
    """The first k buyable products of ``ids``, in order, reading rows a window at a time
    (most neighbours can be bought: twice k rows usually answer, not all 40)."""
    found, start, window = [], 0, 2 * k
    while len(found) < k and start < len(ids):
        found += buyable_in_order(ids[start : start + window], exclude, filters)
        start, window = start + window, window * 2
    return found


def _same_kind_fallback(product, k, filters):
    """Before a product is embedded: products of the same article type and colour first."""
    queryset = filter_products(
        Product.objects.available().exclude(pk=product.pk).filter(article_type=product.article_type), filters
    )
    same_colour = list(queryset.filter(base_colour=product.base_colour)[:k])
    if len(same_colour) < k:
        same_colour += list(queryset.exclude(base_colour=product.base_colour)[: k - len(same_colour)])
    return same_colour
