"""A product page (below the header) is rendered once per catalogue version, index build
and address for every visitor: a second visitor's page runs no query, each visitor gets
their own CSRF token, and what a checkout changes for shoppers shows at once."""

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.facets import VERSION_KEY
from catalog.models import Product
from recommender.models import ProductView
from recommender.refresh import rebuild_index
from tests.catalog.test_catalogue_page_cache import card_tokens
from tests.shop_pages import checkout_form, put_in_cart

pytestmark = pytest.mark.django_db(transaction=True)  # stock changes take effect on commit


@pytest.fixture
def looked_at(clustered_catalogue):
    """A product of cluster 1 with 8 pieces, with an index build of the clustered catalogue."""
    Product.objects.filter(pk=clustered_catalogue[10].pk).update(stock=8)
    rebuild_index()
    return Product.objects.get(pk=clustered_catalogue[10].pk)


def buy(product, quantity):
    buyer = Client()
    put_in_cart(buyer, product, quantity)
    placed = buyer.post(reverse("shop:checkout"), checkout_form(buyer))
    assert placed.status_code == 302, placed.content.decode()[-2000:]


def test_a_second_visitor_gets_the_page_without_a_query_and_with_their_own_token(looked_at):
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    first_page = first.get(looked_at.get_absolute_url()).content.decode()

    with CaptureQueriesContext(connection) as queries:
        second_page = second.get(looked_at.get_absolute_url()).content.decode()

    # Nothing but the look for vectors stored since the build (at most once a second).
    assert not [q for q in queries if "recommender_embedding" not in q["sql"]]
    assert looked_at.display_name in second_page and "Similar products" in second_page
    tokens = card_tokens(second_page)
    assert len(tokens) == 1 and tokens.isdisjoint(card_tokens(first_page))  # the product's form and its cards
    added = second.post(
        "/cart/add/",
        {"product_id": looked_at.pk, "quantity": 1, "next": "/", "csrfmiddlewaretoken": tokens.pop()},
    )
    assert added.status_code == 302
    assert [row["line"].product_id for row in second.get("/cart/").context["rows"]] == [looked_at.pk]


def test_a_sale_that_leaves_few_pieces_shows_at_once(looked_at):
    visitor = Client()
    assert "In stock" in visitor.get(looked_at.get_absolute_url()).content.decode()

    buy(looked_at, 5)

    page = visitor.get(looked_at.get_absolute_url()).content.decode()
    assert "Only 3 left" in page
    assert re.search(r'name="quantity" value="1" min="1" max="3"', page)


def test_a_sale_from_a_large_stock_keeps_the_shared_pages(looked_at):
    Product.objects.filter(pk=looked_at.pk).update(stock=500)
    cache.clear()
    Client().get(looked_at.get_absolute_url())
    version = cache.get(VERSION_KEY)

    buy(looked_at, 2)

    assert cache.get(VERSION_KEY) == version
    assert "In stock" in Client().get(looked_at.get_absolute_url()).content.decode()


def test_a_product_taken_off_sale_is_gone_at_once(looked_at):
    visitor = Client()
    assert visitor.get(looked_at.get_absolute_url()).status_code == 200

    looked_at.is_active = False
    looked_at.save()

    assert visitor.get(looked_at.get_absolute_url()).status_code == 404


def test_a_shoppers_view_is_remembered_from_a_shared_page(looked_at, django_user_model):
    Client().get(looked_at.get_absolute_url())  # fills the shared page
    shopper = django_user_model.objects.create_user("viewer", password="pw-123456789")
    client = Client()
    client.force_login(shopper)

    client.get(looked_at.get_absolute_url())

    assert ProductView.objects.filter(user=shopper, product=looked_at).exists()
