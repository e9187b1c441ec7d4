"""Orders are private: history, detail and confirmation show a shopper only their own."""

import pytest
from django.test import Client
from django.urls import reverse

from shop.models import Order
from tests.factories import OrderFactory, OrderItemFactory
from tests.shop_pages import checkout_form, put_in_cart

pytestmark = pytest.mark.django_db


def detail_url(order):
    return reverse("shop:order_detail", args=[order.number])


def confirmation_url(order):
    return reverse("shop:order_confirmation", args=[order.number])


def test_history_lists_only_the_shoppers_orders(user_client, user, other_user):
    mine = [OrderFactory(user=user) for _ in range(2)]
    theirs = OrderFactory(user=other_user)
    OrderItemFactory(order=mine[0])

    page = user_client.get(reverse("shop:order_history")).content.decode()

    for order in mine:
        assert detail_url(order) in page
    assert theirs.number not in page


def test_history_query_count_does_not_grow_with_orders(user_client, user, django_assert_max_num_queries):
    for _ in range(15):
        OrderItemFactory.create_batch(2, order=OrderFactory(user=user))

    # session, user, count, page of orders, their items, header cart
    with django_assert_max_num_queries(6):
        response = user_client.get(reverse("shop:order_history"))
    assert response.content.decode().count('<td data-label="Order"><a href=') == 15


def test_order_detail_shows_lines_and_shipping(user_client, user):
    order = OrderFactory(user=user, city="Utrecht")
    OrderItemFactory(order=order, product_name="Canvas Tote", quantity=2)

    page = user_client.get(detail_url(order)).content.decode()

    assert "Canvas Tote" in page and "Utrecht" in page


def test_a_shopper_cannot_open_another_shoppers_order(user_client, other_user):
    theirs = OrderFactory(user=other_user)

    assert user_client.get(detail_url(theirs)).status_code == 404
    assert user_client.get(confirmation_url(theirs)).status_code == 404


def test_a_visitor_cannot_see_orders(client, user):
    order = OrderFactory(user=user)

    history = client.get(reverse("shop:order_history"))
    detail = client.get(detail_url(order))

    assert history.status_code == 302 and history.url.startswith(reverse("login"))
    assert detail.status_code == 302 and detail.url.startswith(reverse("login"))
    assert client.get(confirmation_url(order)).status_code == 404


def test_a_visitor_sees_the_confirmation_of_their_own_order_only(client, product):
    put_in_cart(client, product)
    client.post(reverse("shop:checkout"), checkout_form(client))
    own = Order.objects.get()
    guest_order = OrderFactory(user=None)

    assert client.get(confirmation_url(own)).status_code == 200
    assert client.get(confirmation_url(guest_order)).status_code == 404
    assert Client().get(confirmation_url(own)).status_code == 404


def test_confirmation_is_gone_after_logging_out(client, user, product):
    client.force_login(user)
    put_in_cart(client, product)
    client.post(reverse("shop:checkout"), checkout_form(client))
    order = Order.objects.get()
    assert client.get(confirmation_url(order)).status_code == 200

    client.post(reverse("logout"))

    assert client.get(confirmation_url(order)).status_code == 404


def test_unknown_order_number_is_not_found(user_client):
    assert user_client.get(reverse("shop:order_detail", args=["NOPE"])).status_code == 404
    assert user_client.get(reverse("shop:order_confirmation", args=["NOPE"])).status_code == 404
