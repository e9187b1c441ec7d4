"""What shoppers see: similar products, search by photo, recommended for you.

Product pages read the neighbour lists stored with the current index build; other
queries go to the memory-mapped Annoy build. Vectors stored after that build (new or
changed products) are searched exactly and merged in, and without a usable build the
search is exact over all stored vectors while a rebuild is requested, so pages always
answer. Nothing here imports TensorFlow except ``search_by_photo``.
"""
import logging

import numpy as np
from django.conf import settings
from django.db.models import Count, Max, Sum

from catalog.models import Product
from shop.models import Order, OrderItem

from . import index as annoy_index
from .indexing import request_index_rebuild
from .models import ProductView
from .vectors import current_embeddings, current_model_name, exact_neighbours, search_vectors, stored_vectors

logger = logging.getLogger(__name__)

PHOTO_FILTERS = {"gender": "gender", "masterCategory": "master_category"}
MAX_RESULTS = 50
SESSION_VIEWED_KEY = "recently_viewed"
REMEMBERED_VIEWS = 20
_exact_cache = {"key": None, "data": None}


def _all_vectors_cached(model_name):
    """All stored search vectors (only used while no index is usable), reloaded when
    vectors were added, changed or removed."""
    embeddings = current_embeddings(model_name)
    state = embeddings.aggregate(n=Count("pk"), last=Max("updated_at"), top=Max("pk"))
    key = (model_name, settings.COLOUR_WEIGHT, state["n"], state["last"], state["top"])
    if _exact_cache["key"] != key:
        _exact_cache.update(key=key, data=stored_vectors(embeddings))
    return _exact_cache["data"]


def _schedule_rebuild_quietly():
    try:
        request_index_rebuild()
    except Exception as exc:  # never let a page fail because the rebuild could not be asked for
        logger.warning("Could not request an index rebuild: %s", exc)


def nearest_products(vector, count):
    """(product id, distance) of about ``count`` products nearest to a search vector."""
    model_name = current_model_name()
    try:
        index = annoy_index.current_index(model_name)
    except annoy_index.IndexUnavailable as exc:
        logger.info("Exact search: %s", exc)
        _schedule_rebuild_quietly()
        ids, vectors = _all_vectors_cached(model_name)
        return exact_neighbours(vector, ids, vectors, count) if len(ids) else []
    hits = index.neighbours_of_vector(vector, count)
    return _merge_newer_vectors(index, vector, hits, count)


def _newer_vectors(index):
    """(product ids, search vectors) stored after the build was made."""
    newer = current_embeddings(index.model_name)
    if index.vectors_until is not None:
        newer = newer.filter(updated_at__gt=index.vectors_until)
    ids, vectors = stored_vectors(newer)
    if len(ids):
        _schedule_rebuild_quietly()  # debounced; covers a rebuild request that was lost
    return ids, vectors


def _merge_newer_vectors(index, vector, hits, count, newer=None):
    ids, vectors = _newer_vectors(index) if newer is None else newer
    if len(ids) == 0:
        return hits
    changed = set(ids.tolist())
    merged = [hit for hit in hits if hit[0] not in changed] + exact_neighbours(vector, ids, vectors, count)
    merged.sort(key=lambda hit: hit[1])
    return merged[:count]


def product_vector(product_id):
    """The search vector of a catalogue product, or None if it has no vectors yet."""
    model_name = current_model_name()
    embedding = current_embeddings(model_name).filter(product_id=product_id).first()
    if embedding is None:
        return None
    return search_vectors(embedding.cnn_vector, embedding.colour_vector)[0]


def _available(ids, exclude=(), filters=None):
    """Products for ids, in that order, keeping only active, in-stock, matching ones."""
    queryset = Product.objects.available().filter(pk__in=[pk for pk in ids if pk not in exclude])
    for param, field in PHOTO_FILTERS.items():
        value = (filters or {}).get(param)
        if value:
            queryset = queryset.filter(**{field: value})
    by_id = {product.pk: product for product in queryset}
    return [by_id[pk] for pk in ids if pk in by_id]


def products_near(vector, k, exclude=(), filters=None):
    """The k products nearest to a search vector that a shopper can buy."""
    k = max(1, min(int(k), MAX_RESULTS))
    exclude = set(exclude)
    found = []
    count = (k + len(exclude)) * 4 + 20
    while True:
        hits = nearest_products(vector, count)
        found = _available([pk for pk, _ in hits], exclude, filters)
        if len(found) >= k or len(hits) < count or count >= 5000:
            break
        count *= 4  # many neighbours are out of stock or filtered out: look further
    return found[:k]


def similar_products(product, k=None, filters=None):
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
    newer = _newer_vectors(index)
    if product.pk in set(newer[0].tolist()):
        return None
    if len(newer[0]):
        item = index.positions[product.pk]
        hits = [(pk, index.annoy.get_distance(item, index.positions[pk])) for pk in neighbours]
        hits = _merge_newer_vectors(index, index.vector_of_product(product.pk), hits, len(hits), newer)
        neighbours = [pk for pk, _ in hits]
    found = _available(neighbours, {product.pk}, filters)
    return found[:k] if len(found) >= k else None


def _same_kind_fallback(product, k, filters):
    """Before a product is embedded: products of the same article type and colour first."""
    queryset = Product.objects.available().exclude(pk=product.pk).filter(article_type=product.article_type)
    for param, field in PHOTO_FILTERS.items():
        if (filters or {}).get(param):
            queryset = queryset.filter(**{field: filters[param]})
    same_colour = list(queryset.filter(base_colour=product.base_colour)[:k])
    if len(same_colour) < k:
        same_colour += list(queryset.exclude(base_colour=product.base_colour)[: k - len(same_colour)])
    return same_colour


def search_by_photo(data, k=None, filters=None):
    """The k catalogue products that look most like an uploaded photo (bytes).

    Raises recommender.embedding.InvalidImage with a shopper-readable message for files
    that are not images, or are too large.
    """
    from .embedding import colour_descriptor, get_embedder, prepare_image

    k = k or settings.SIMILAR_PRODUCTS_COUNT
    array = prepare_image(data)
    cnn = get_embedder().embed_one(array)
    vector = search_vectors(cnn, colour_descriptor(array))[0]
    return products_near(vector, k, filters=filters)


def search_by_product_photo(product_id, k=None, filters=None):
    """Search by the photo of a catalogue product (no model run: its vectors are stored)."""
    k = k or settings.SIMILAR_PRODUCTS_COUNT
    vector = product_vector(product_id)
    if vector is None:
        return []
    return products_near(vector, k, exclude={product_id}, filters=filters)


def record_view(request, product):
    """Remember a product page view for this visitor's or shopper's recommendations."""
    viewed = [pk for pk in request.session.get(SESSION_VIEWED_KEY, []) if pk != product.pk]
    request.session[SESSION_VIEWED_KEY] = ([product.pk] + viewed)[:REMEMBERED_VIEWS]
    if request.user.is_authenticated:
        ProductView.objects.update_or_create(user=request.user, product=product)


def _recently_viewed(request):
    viewed = list(request.session.get(SESSION_VIEWED_KEY, []))
    if request.user.is_authenticated:
        for pk in (
            ProductView.objects.filter(user=request.user)
            .order_by("-viewed_at")
            .values_list("product_id", flat=True)[:REMEMBERED_VIEWS]
        ):
            if pk not in viewed:
                viewed.append(pk)
    return viewed[:REMEMBERED_VIEWS]


def recommended_for(request, cart_product_ids=(), k=None):
    """Products for "recommended for you": near the mean of what this shopper viewed and
    put in the cart (cart items count double, recent views more), excluding the cart.

    A new visitor gets the best sellers, then the newest products."""
    k = k or settings.SIMILAR_PRODUCTS_COUNT
    cart_ids = list(cart_product_ids)
    viewed = _recently_viewed(request)
    weights = {pk: 2.0 for pk in cart_ids}
    for rank, pk in enumerate(viewed):
        weights[pk] = weights.get(pk, 0.0) + 1.0 / (1.0 + 0.2 * rank)
    profile = _profile_vector(weights)
    if profile is not None:
        found = products_near(profile, k, exclude=set(cart_ids))
        if len(found) >= k:
            return found
    else:
        found = []
    return found + _best_sellers(k - len(found), exclude=set(cart_ids) | {p.pk for p in found})


def _profile_vector(weights):
    if not weights:
        return None
    rows = current_embeddings().filter(product_id__in=list(weights))
    ids, vectors = stored_vectors(rows)
    if len(ids) == 0:
        return None
    w = np.array([weights[int(pk)] for pk in ids], dtype=np.float32)
    profile = (vectors * w[:, None]).sum(axis=0)
    norm = np.linalg.norm(profile)
    return profile / norm if norm > 0 else None


def _best_sellers(k, exclude):
    if k <= 0:
        return []
    top_sold = (
        OrderItem.objects.filter(product__isnull=False)
        .exclude(order__status=Order.Status.CANCELLED)
        .exclude(product_id__in=exclude)
        .values("product_id")
        .annotate(sold=Sum("quantity"))
        .order_by("-sold", "product_id")
        .values_list("product_id", flat=True)[: k * 4]
    )
    found = _available(list(top_sold), exclude)[:k]
    if len(found) < k:
        taken = set(exclude) | {p.pk for p in found}
        found += list(Product.objects.available().exclude(pk__in=taken).order_by("-created_at", "pk")[: k - len(found)])
    return found
