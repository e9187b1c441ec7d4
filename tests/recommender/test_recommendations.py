"""Recommended for you: what a visitor viewed and put in the cart, else best sellers."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core import signing
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Product
from recommender import recommendations
from recommender.models import ProductView
from recommender.refresh import rebuild_index
from tests.factories import OrderItemFactory, ProductFactory

pytestmark = pytest.mark.django_db


def viewed_cookie(ids):
    """The recently-viewed cookie value a product page sets for these ids."""
    signer = signing.get_cookie_signer(
        salt=recommendations.VIEWED_COOKIE + recommendations.VIEWED_COOKIE_SALT
    )
    return signer.sign(",".join(str(pk) for pk in ids))


def visitor_request(viewed=(), user=None):
    """A request of a visitor (or ``user``) whose cookie remembers ``viewed`` product ids."""
    request = RequestFactory().get("/")
    request.session = SessionStore()
    if viewed:
        request.COOKIES[recommendations.VIEWED_COOKIE] = viewed_cookie(viewed)
    request.user = user or AnonymousUser()
    return request


def viewed_by(client):
    """The product ids a client's recently-viewed cookie holds, as pages read them."""
    request = RequestFactory().get("/")
    request.COOKIES = {name: morsel.value for name, morsel in client.cookies.items()}
    return recommendations.viewed_cookie_ids(request)


def recommended_ids(html):
    """Product ids in the "Recommended for you" section of a page."""
    assert "Recommended for you" in html
    section = html.split('aria-labelledby="recommended-title"', 1)[1].split("</section>", 1)[0]
    return [int(pk) for pk in re.findall(r'name="product_id" value="(\d+)"', section)]


def cluster(products, number):
    return [p for p in products if p.article_type == f"type{number}"]


@pytest.fixture
def indexed(clustered_catalogue):
    rebuild_index()
    return clustered_catalogue


# Remembering views


def test_product_pages_remember_the_last_20_views_newest_first(client):
    products = ProductFactory.create_batch(25)
    for product in products:
        client.get(product.get_absolute_url())
    client.get(products[10].get_absolute_url())  # seen again: moves to the front, once

    viewed = viewed_by(client)

    assert len(viewed) == 20
    assert viewed[0] == products[10].pk
    assert viewed[1:] == [p.pk for p in reversed(products[5:25]) if p.pk != products[10].pk]
    assert len(set(viewed)) == 20


def test_visitor_views_write_no_session_or_view_row(client, product):
    with CaptureQueriesContext(connection) as queries:
        client.get(product.get_absolute_url())

    assert viewed_by(client) == [product.pk]
    assert not ProductView.objects.exists() and not Session.objects.exists()
    assert not [q["sql"] for q in queries if "django_session" in q["sql"]]


def test_a_forged_or_damaged_views_cookie_is_ignored(client, product):
    other = ProductFactory()
    client.cookies[recommendations.VIEWED_COOKIE] = f"{other.pk}:forged-signature"
    client.get(product.get_absolute_url())

    assert viewed_by(client) == [product.pk]


def test_shopper_views_are_kept_as_one_row_per_product(user_client, user):
    first, second = ProductFactory.create_batch(2)
    user_client.get(first.get_absolute_url())
    user_client.get(second.get_absolute_url())
    earlier = ProductView.objects.get(user=user, product=first).viewed_at

    user_client.get(first.get_absolute_url())

    assert ProductView.objects.filter(user=user).count() == 2
    assert ProductView.objects.get(user=user, product=first).viewed_at > earlier


def test_inactive_product_page_is_not_remembered(client):
    hidden = ProductFactory(is_active=False)

    assert client.get(hidden.get_absolute_url()).status_code == 404
    assert viewed_by(client) == []


# What is recommended


def test_recommendations_are_near_what_was_viewed(indexed):
    viewed = cluster(indexed, 2)[:2]

    found = recommendations.recommended_for(visitor_request([p.pk for p in viewed]))

    assert len(found) == 5
    assert {p.article_type for p in found} == {"type2"}


def test_cart_items_are_never_recommended_and_outweigh_a_single_view(indexed):
    in_cart = cluster(indexed, 0)[:3]
    viewed = cluster(indexed, 1)[0]

    found = recommendations.recommended_for(
        visitor_request([viewed.pk]), cart_product_ids=[p.pk for p in in_cart]
    )

    assert len(found) == 5
    assert not {p.pk for p in found} & {p.pk for p in in_cart}
    assert {p.article_type for p in found} == {"type0"}


def test_recent_views_count_more_than_older_ones(indexed):
    older = cluster(indexed, 0)[0]
    recent = cluster(indexed, 1)[0]

    found = recommendations.recommended_for(visitor_request([recent.pk, older.pk]), k=3)

    assert {p.article_type for p in found} == {"type1"}


def test_recommendations_skip_products_that_cannot_be_bought(indexed):
    viewed = cluster(indexed, 1)[0]
    gone = cluster(indexed, 1)[1:6]
    for product in gone[:3]:
        product.stock = 0
        product.save()
    for product in gone[3:]:
        product.is_active = False
        product.save()

    found = recommendations.recommended_for(visitor_request([viewed.pk]))

    assert not {p.pk for p in found} & {p.pk for p in gone}
    assert {p.article_type for p in found} == {"type1"}


def test_views_without_stored_vectors_fall_back_to_best_sellers(indexed):
    unembedded = ProductFactory()
    best = cluster(indexed, 2)[4]
    OrderItemFactory(product=best, quantity=7)

    found = recommendations.recommended_for(visitor_request([unembedded.pk]), k=1)

    assert found == [best]


def test_shopper_views_follow_them_to_a_new_session(indexed, user):
    first_visit = Client()
    first_visit.force_login(user)
    for product in cluster(indexed, 2)[:2]:
        first_visit.get(product.get_absolute_url())

    found = recommendations.recommended_for(visitor_request(user=user))

    assert len(found) == 5
    assert {p.article_type for p in found} == {"type2"}


def test_a_new_visitor_gets_best_sellers_then_newest():
    now = timezone.now()
    old, best, second, newest, newer = ProductFactory.create_batch(5)
    for age, product in enumerate([newest, newer, second, best, old]):
        Product.objects.filter(pk=product.pk).update(created_at=now - timedelta(days=age))
    OrderItemFactory(product=second, quantity=3)
    OrderItemFactory(product=best, quantity=2)
    OrderItemFactory(product=best, quantity=2)

    found = recommendations.recommended_for(visitor_request(), k=4)

    assert found == [best, second, newest, newer]


def test_best_sellers_that_cannot_be_bought_are_skipped():
    sold_out = ProductFactory()
    hidden = ProductFactory()
    buyable = ProductFactory()
    OrderItemFactory(product=sold_out, quantity=9)
    OrderItemFactory(product=hidden, quantity=8)
    OrderItemFactory(product=buyable, quantity=1)
    Product.objects.filter(pk=sold_out.pk).update(stock=0)
    Product.objects.filter(pk=hidden.pk).update(is_active=False)

    found = recommendations.recommended_for(visitor_request(), k=3)

    assert found[0] == buyable
    assert sold_out not in found and hidden not in found


def test_a_best_seller_in_the_cart_is_not_recommended():
    best, other = ProductFactory.create_batch(2)
    OrderItemFactory(product=best, quantity=5)

    found = recommendations.recommended_for(visitor_request(), cart_product_ids=[best.pk], k=2)

    assert found == [other]


# Pages


def test_home_page_shows_recommended_for_you(client, indexed):
    client.get(cluster(indexed, 1)[0].get_absolute_url())

    response = client.get("/")

    ids = recommended_ids(response.content.decode())
    assert len(ids) == 5
    assert {Product.objects.get(pk=pk).article_type for pk in ids} == {"type1"}


def test_visitors_sharing_the_cached_home_page_each_get_their_own_recommendations(indexed):
    """The catalogue part of the home page is rendered once for everybody; what is
    recommended is worked out per visitor, and only on the unfiltered first page."""
    first, second = Client(), Client()
    first.get(cluster(indexed, 1)[0].get_absolute_url())
    second.get(cluster(indexed, 2)[0].get_absolute_url())

    first_home, second_home = first.get("/").content.decode(), second.get("/").content.decode()

    types = [
        {Product.objects.get(pk=pk).article_type for pk in recommended_ids(home)}
        for home in (first_home, second_home)
    ]
    assert types == [{"type1"}, {"type2"}]
    assert first.get("/").content.decode().count("Recommended for you") == 1  # a cache hit
    for other in ("/?page=2", "/?gender=Men"):
        assert "Recommended for you" not in first.get(other).content.decode()


def test_new_visitor_home_page_recommends_best_sellers(client):
    products = ProductFactory.create_batch(6)
    OrderItemFactory(product=products[3], quantity=4)

    response = client.get("/")

    assert recommended_ids(response.content.decode())[0] == products[3].pk


def test_new_visitors_recommendations_are_worked_out_once_and_drop_a_sell_out_at_once():
    products = ProductFactory.create_batch(6)
    OrderItemFactory(product=products[3], quantity=4)
    first = recommended_ids(Client().get("/").content.decode())

    with CaptureQueriesContext(connection) as queries:
        second = recommended_ids(Client().get("/").content.decode())

    assert second == first and first[0] == products[3].pk
    assert not [q for q in queries if 'ORDER BY "catalog_product"."created_at"' in q["sql"]]
    assert not [q for q in queries if "shop_orderitem" in q["sql"]]

    products[3].stock = 0
    products[3].save()  # sold out: a new catalogue version
    assert products[3].pk not in recommended_ids(Client().get("/").content.decode())


def test_cart_page_shows_recommendations_without_the_cart_items(client, indexed):
    in_cart = cluster(indexed, 0)[:2]
    for product in in_cart:
        client.post("/cart/add/", {"product_id": product.pk, "quantity": 1})

    response = client.get("/cart/")

    ids = recommended_ids(response.content.decode())
    assert len(ids) == 5
    assert not set(ids) & {p.pk for p in in_cart}
    assert {Product.objects.get(pk=pk).article_type for pk in ids} == {"type0"}


def test_home_page_does_not_recommend_what_is_already_in_the_cart(client, indexed):
    in_cart = cluster(indexed, 0)[:2]
    for product in in_cart:
        client.get(product.get_absolute_url())
        client.post("/cart/add/", {"product_id": product.pk, "quantity": 1})

    response = client.get("/")

    ids = recommended_ids(response.content.decode())
    assert not set(ids) & {p.pk for p in in_cart}
