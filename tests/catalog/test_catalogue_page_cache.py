"""The catalogue page's filters, product cards and pages are rendered once per catalogue
version and address, for every visitor: each visitor still gets their own CSRF token, and
a product that sells out or comes back stops or starts being offered at once."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.models import Product
from catalog.stock import adjust_stock
from tests.factories import ProductFactory
from tests.shop_pages import checkout_form, put_in_cart

pytestmark = pytest.mark.django_db(transaction=True)  # stock changes take effect on commit
# A filtered page: the home page also shows "Recommended for you", which is per visitor.
LIST_URL = "/?gender=Men"


def add_to_cart_ids(html):
    return [int(pk) for pk in re.findall(r'name="product_id" value="(\d+)"', html)]


def card_tokens(html):
    return set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html))


def test_every_visitor_gets_their_own_token_in_the_shared_cards_and_can_add_to_cart():
    product = ProductFactory(stock=3)
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    first_page = first.get(LIST_URL).content.decode()

    with CaptureQueriesContext(connection) as queries:
        second_page = second.get(LIST_URL).content.decode()

    assert not queries  # filters, counts, cards and pages came cached
    assert add_to_cart_ids(second_page) == [product.pk]
    (token,) = card_tokens(second_page)
    assert card_tokens(first_page) != {token}
    added = second.post(
        "/cart/add/", {"product_id": product.pk, "quantity": 1, "next": "/", "csrfmiddlewaretoken": token}
    )
    assert added.status_code == 302
    assert [row["line"].product_id for row in second.get("/cart/").context["rows"]] == [product.pk]


def test_a_product_sold_out_at_checkout_is_no_longer_offered():
    last_one, other = ProductFactory(stock=1), ProductFactory(stock=5)
    visitor, buyer = Client(), Client()
    assert sorted(add_to_cart_ids(visitor.get(LIST_URL).content.decode())) == sorted([last_one.pk, other.pk])

    put_in_cart(buyer, last_one)
    placed = buyer.post(reverse("shop:checkout"), checkout_form(buyer))
    assert placed.status_code == 302, placed.content.decode()[-2000:]

    assert Product.objects.get(pk=last_one.pk).stock == 0
    assert add_to_cart_ids(visitor.get(LIST_URL).content.decode()) == [other.pk]


def test_stock_added_by_staff_is_offered_at_once():
    product = ProductFactory(stock=0)
    visitor = Client()
    assert add_to_cart_ids(visitor.get(LIST_URL).content.decode()) == []

    adjust_stock(product.pk, by=4)

    assert add_to_cart_ids(visitor.get(LIST_URL).content.decode()) == [product.pk]
