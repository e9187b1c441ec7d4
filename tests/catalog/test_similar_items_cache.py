"""A product's similar items, on its page and from the API, are found once per catalogue
version, index build and vectors stored since it, for every visitor: each visitor still
gets their own CSRF token, and a similar item that sells out, or a new product that looks
alike, shows at once."""

import re

import numpy as np
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.models import Product
from catalog.stock import adjust_stock
from recommender.refresh import rebuild_index
from tests.catalog.test_catalogue_page_cache import add_to_cart_ids, card_tokens
from tests.factories import EmbeddingFactory, ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)  # stock changes take effect on commit


@pytest.fixture
def looked_at(clustered_catalogue):
    """A product of cluster 1, with an index build of the clustered catalogue."""
    rebuild_index()
    return clustered_catalogue[10]


def similar_ids(html, product):
    return [pk for pk in add_to_cart_ids(html) if pk != product.pk]


def on_page(client, product):
    return similar_ids(client.get(product.get_absolute_url()).content.decode(), product)


def from_api(client, product, **params):
    response = client.get(f"/api/products/{product.pk}/similar/", params)
    assert response.status_code == 200
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture(params=[on_page, from_api], ids=["page", "api"])
def shown(request):
    """The similar items a visitor is shown (product page or API): ``shown(client, product)``."""
    return request.param


def test_every_visitor_gets_their_own_token_in_the_shared_cards_and_can_add_to_cart(looked_at):
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    first_page = first.get(looked_at.get_absolute_url()).content.decode()

    with CaptureQueriesContext(connection) as queries:
        second_page = second.get(looked_at.get_absolute_url()).content.decode()

    assert not [q for q in queries if 'FROM "catalog_product"' in q["sql"]]  # the whole page came cached
    shown = similar_ids(second_page, looked_at)
    assert shown == similar_ids(first_page, looked_at) and len(shown) == 5
    # The product's own form and the cards each carry a token of this visitor's.
    tokens = card_tokens(second_page)
    assert tokens and tokens.isdisjoint(card_tokens(first_page))
    token = re.search(
        rf'name="csrfmiddlewaretoken" value="([^"]+)">\s*<input type="hidden" name="product_id" value="{shown[0]}"',
        second_page,
    )[1]
    added = second.post(
        "/cart/add/", {"product_id": shown[0], "quantity": 1, "next": "/", "csrfmiddlewaretoken": token}
    )
    assert added.status_code == 302
    assert [row["line"].product_id for row in second.get("/cart/").context["rows"]] == [shown[0]]


def test_the_api_answers_a_second_visitor_from_the_cache(looked_at):
    first = from_api(Client(), looked_at)

    with CaptureQueriesContext(connection) as queries:
        second = from_api(Client(), looked_at)

    product_queries = [q for q in queries if 'FROM "catalog_product"' in q["sql"]]
    assert len(product_queries) == 1  # the product itself
    assert second == first and len(second) == 5


def test_the_api_keeps_one_answer_per_count_filters_and_address(looked_at):
    visitor = Client()
    Product.objects.filter(pk__in=[p.pk for p in Product.objects.all()[:30:2]]).update(gender="Women")
    five, three = from_api(visitor, looked_at), from_api(visitor, looked_at, k=3)
    women = from_api(visitor, looked_at, gender="Women")
    assert len(five) == 5 and three == five[:3]
    assert set(Product.objects.filter(pk__in=women).values_list("gender", flat=True)) == {"Women"}
    assert women != five

    # Product URLs are absolute: another address the site is reached at gets its own.
    def urls(host):
        response = visitor.get(f"/api/products/{looked_at.pk}/similar/", HTTP_HOST=host)
        return {row["url"] for row in response.json()["results"]}

    assert all(url.startswith("http://testserver/") for url in urls("testserver"))
    assert all(url.startswith("http://localhost/") for url in urls("localhost"))


def test_a_similar_item_that_sells_out_is_no_longer_offered(looked_at, shown):
    visitor = Client()
    first_shown = shown(visitor, looked_at)

    adjust_stock(first_shown[0], by=-10_000)

    now_shown = shown(visitor, looked_at)
    assert first_shown[0] not in now_shown and len(now_shown) == 5


def test_a_product_embedded_after_the_build_shows_at_once(looked_at, shown):
    visitor = Client()
    newcomer = ProductFactory(article_type="type1")
    before = shown(visitor, looked_at)

    # Only its vectors are new now: the catalogue version is the same as for ``before``.
    EmbeddingFactory(product=newcomer, cnn=np.eye(3, 16)[1] * 10)  # the centre of the cluster

    after = shown(visitor, looked_at)
    assert newcomer.pk not in before and newcomer.pk in after


def test_a_new_build_is_shown_at_once(looked_at, shown):
    visitor = Client()
    before = shown(visitor, looked_at)
    moved = Product.objects.get(pk=before[0])
    EmbeddingFactory(product=moved, cnn=np.eye(3, 16)[2] * 10)  # into another cluster
    rebuild_index()  # nothing is newer than this build: only the build differs

    after = shown(visitor, looked_at)
    assert moved.pk not in after and len(after) == 5
