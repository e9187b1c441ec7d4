"""Recommended for you: what a shopper viewed and put in the cart, turned into products
near the mean of their vectors; best sellers and the newest products for a new visitor."""

from collections.abc import Iterable

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from catalog.facets import catalogue_version
from catalog.models import Product
from shop.selectors import best_selling_product_ids

from .models import ProductView
from .neighbours import buyable_in_order, products_near, serving_space
from .vector_store import current_embeddings, stored_features

# A visitor's recent views live in a signed cookie, not the session: a product page then
# writes nothing to the database for visitors (a session row per first view was most of
# a product page's cost under load). Signed, so a page never trusts ids it did not set.
VIEWED_COOKIE = "recently_viewed"
VIEWED_COOKIE_SALT = "recommender.recently-viewed"
REMEMBERED_VIEWS = 20
# What every new visitor is recommended is worked out once per catalogue version and this
# many seconds (ranking all sales grows with the orders); a sell-out shows at once.
NEW_VISITOR_SECONDS = 60


def record_view(request: HttpRequest, response: HttpResponse, product_id: int) -> None:
    """Remember a product page view for this visitor's or shopper's recommendations (in
    the page's ``response`` cookie; for a signed-in shopper also as a row, for every device)."""
    viewed = [product_id] + [pk for pk in viewed_cookie_ids(request) if pk != product_id]
    response.set_signed_cookie(
        VIEWED_COOKIE,
        ",".join(str(pk) for pk in viewed[:REMEMBERED_VIEWS]),
        salt=VIEWED_COOKIE_SALT,
        max_age=settings.SESSION_COOKIE_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    if request.user.is_authenticated:
        ProductView.objects.update_or_create(user=request.user, product_id=product_id)


def viewed_cookie_ids(request: HttpRequest) -> list[int]:
    """Product ids in the visitor's recently-viewed cookie, newest first ([] when it is
    missing, expired or was not signed here)."""
    value = request.get_signed_cookie(
        VIEWED_COOKIE, default="", salt=VIEWED_COOKIE_SALT, max_age=settings.SESSION_COOKIE_AGE
    )
    return [int(pk) for pk in value.split(",") if pk.isdigit()][:REMEMBERED_VIEWS]


def _recently_viewed(request):
    viewed = viewed_cookie_ids(request)
    if request.user.is_authenticated:
        for pk in (
            ProductView.objects.filter(user=request.user)
            .order_by("-viewed_at")
            .values_list("product_id", flat=True)[:REMEMBERED_VIEWS]
        ):
            if pk not in viewed:
                viewed.append(pk)
    return viewed[:REMEMBERED_VIEWS]


def recommended_for(
    request: HttpRequest, cart_product_ids: Iterable[int] = (), k: int | None = None
) -> list[Product]:
    """Products for "recommended for you": near the mean of what this shopper viewed and
    put in the cart (cart items count double, recent views more), excluding the cart.

    A new visitor gets the best sellers, then the newest products."""
    k = k or settings.SIMILAR_PRODUCTS_COUNT
    cart_ids = list(cart_product_ids)
    viewed = _recently_viewed(request)
    weights = {pk: 2.0 for pk in cart_ids}
    for rank, pk in enumerate(viewed):
        weights[pk] = weights.get(pk, 0.0) + 1.0 / (1.0 + 0.2 * rank)
    found = []
    ids, cnn, colour = stored_features(current_embeddings().filter(product_id__in=list(weights)))
    if len(ids):
        space, index = serving_space()
        profile = _profile_vector(space.vectors(cnn, colour), [weights[int(pk)] for pk in ids])
        if profile is not None:
            found = products_near(space, index, profile, k, exclude=set(cart_ids))
            if len(found) >= k:
                return found
    return found + _best_sellers(k - len(found), exclude=set(cart_ids) | {p.pk for p in found})


def _profile_vector(vectors, weights):
    """The weighted mean direction of search vectors, or None when they cancel out."""
    profile = (vectors * np.asarray(weights, dtype=np.float32)[:, None]).sum(axis=0)
    norm = np.linalg.norm(profile)
    return profile / norm if norm > 0 else None


def _best_sellers(k, exclude):
    """Best sellers, then the newest products: the same for every new visitor."""
    if k <= 0:
        return []
    if exclude:
        return _best_sellers_now(k, exclude)
    ids = cache.get_or_set(
        f"recommended:new-visitor:{catalogue_version()}:{k}",
        lambda: [product.pk for product in _best_sellers_now(k, set())],
        NEW_VISITOR_SECONDS,
    )
    return buyable_in_order(ids)


def _best_sellers_now(k, exclude):
    found = buyable_in_order(best_selling_product_ids(limit=k * 4, exclude=exclude), exclude)[:k]
    if len(found) < k:
        taken = set(exclude) | {p.pk for p in found}
        found += list(
            Product.objects.available().exclude(pk__in=taken).order_by("-created_at", "pk")[: k - len(found)]
        )
    return found
