"""Similar products for a product page: the neighbour list stored with the current index
build, merged with vectors stored since; a search when that list cannot answer; the same
article type and colour before the product has vectors. Never imports TensorFlow."""

from collections.abc import Mapping

from django.conf import settings

from catalog.models import Product

from . import annoy_index
from .neighbours import (
    buyable_in_order,
    filter_products,
    merge_newer_vectors,
    newer_vectors,
    product_vector,
    products_near,
)
from .vector_store import current_model_name


def similar_products(product: Product, k: int | None = None, filters: Mapping | None = None) -> list[Product]:
    """The k products that look most like ``product`` (never itself; active, in stock)."""
    k = k or settings.SIMILAR_PRODUCTS_COUNT
    found = _similar_from_build(product, k, filters)
    if found is not None:
        return found
    vector = product_vector(product.pk)
    if vector is None:
        return _same_kind_fallback(product, k, filters)
    return products_near(vector, k, exclude={product.pk}, filters=filters)


def _similar_from_build(product, k, filters):
    """The product's neighbours stored with the current build, merged with vectors stored
    since; None when they cannot answer (no build, the product is not in it or changed
    since, or too few of them can be bought)."""
    try:
        index = annoy_index.current_index(current_model_name())
    except annoy_index.IndexUnavailable:
        return None
    neighbours = index.stored_neighbours(product.pk)
    if neighbours is None:
        return None
    newer = newer_vectors(index)
    if product.pk in set(newer[0].tolist()):
        return None
    if len(newer[0]):
        item = index.positions[product.pk]
        hits = [(pk, index.annoy.get_distance(item, index.positions[pk])) for pk in neighbours]
        hits = merge_newer_vectors(index, index.vector_of_product(product.pk), hits, len(hits), newer)
        neighbours = [pk for pk, _ in hits]
    found = buyable_in_order(neighbours, {product.pk}, filters)
    return found[:k] if len(found) >= k else None


def _same_kind_fallback(product, k, filters):
    """Before a product is embedded: products of the same article type and colour first."""
    queryset = filter_products(
        Product.objects.available().exclude(pk=product.pk).filter(article_type=product.article_type), filters
    )
    same_colour = list(queryset.filter(base_colour=product.base_colour)[:k])
    if len(same_colour) < k:
        same_colour += list(queryset.exclude(base_colour=product.base_colour)[: k - len(same_colour)])
    return same_colour
