"""Real concurrent checkouts against PostgreSQL: the last pieces are never sold twice.

Each buyer is a separate test client in its own thread with its own database connection;
a barrier releases all checkout requests at the same moment.
"""

import copy
import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from catalog.models import Product
from shop.models import Cart, Order, OrderItem
from tests.factories import SHIPPING, CartFactory, CartItemFactory, ProductFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CHECKOUT_URL = reverse("shop:checkout")
BUYERS = 8
STOCK = 3


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")


def post_at_once(requests):
    """POST every (client, data) pair to the checkout at the same moment.

    Returns the responses and the exceptions raised inside the views, in request order.
    """
    barrier = threading.Barrier(len(requests))
    responses = [None] * len(requests)
    errors = []

    def checkout(index, client, data):
        try:
            barrier.wait(timeout=30)
            responses[index] = client.post(CHECKOUT_URL, data)
        except Exception as exc:  # noqa: BLE001  (reported by the test, not lost in the thread)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=checkout, args=(i, *request)) for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a checkout hung"
    return responses, errors


def is_confirmation(response):
    return response.status_code == 302 and response.url.endswith("/confirmation/")


@pytest.mark.parametrize("wanted, expected_orders", [(1, 3), (2, 1)])
def test_concurrent_buyers_never_oversell(wanted, expected_orders):
    product = ProductFactory(stock=STOCK)
    requests, carts = [], []
    for _ in range(BUYERS):
        user = UserFactory()
        cart = CartFactory(user=user)
        CartItemFactory(cart=cart, product=product, quantity=wanted)
        client = Client()
        client.force_login(user)
        requests.append((client, {**SHIPPING, "cart": cart.pk}))
        carts.append(cart)

    responses, errors = post_at_once(requests)

    assert errors == []
    product.refresh_from_db()
    sold = OrderItem.objects.filter(product=product)
    assert product.stock >= 0
    assert Order.objects.count() == expected_orders
    assert sum(item.quantity for item in sold) == STOCK - product.stock == expected_orders * wanted
    assert sum(is_confirmation(response) for response in responses) == expected_orders
    # The others are sent back to their cart, which stays open and intact.
    refused = [response for response in responses if not is_confirmation(response)]
    assert all(response.url == reverse("shop:cart") for response in refused)
    statuses = sorted(Cart.objects.filter(pk__in=[c.pk for c in carts]).values_list("status", flat=True))
    assert statuses.count(Cart.Status.ORDERED) == expected_orders
    assert statuses.count(Cart.Status.OPEN) == BUYERS - expected_orders
    # Every placed order belongs to the buyer whose cart it came from.
    for order in Order.objects.all():
        assert Cart.objects.get(user=order.user, status=Cart.Status.ORDERED)


def test_the_same_checkout_submitted_four_times_at_once_places_one_order():
    product = ProductFactory(stock=10)
    user = UserFactory()
    cart = CartFactory(user=user)
    CartItemFactory(cart=cart, product=product, quantity=2)
    first = Client()
    first.force_login(user)
    tabs = [first]
    for _ in range(3):  # more requests of the same browser session
        tab = Client()
        tab.cookies = copy.deepcopy(first.cookies)  # same session, own cookie jar per thread
        tabs.append(tab)
    data = {**SHIPPING, "cart": cart.pk}

    responses, errors = post_at_once([(tab, data) for tab in tabs])

    assert errors == []
    assert Order.objects.count() == 1
    assert Product.objects.get(pk=product.pk).stock == 8
    confirmation = reverse("shop:order_confirmation", args=[Order.objects.get().number])
    # Depending on timing a repeat lands on the order itself or on the order history.
    urls = [response.url for response in responses]
    assert confirmation in urls
    assert set(urls) <= {confirmation, reverse("shop:order_history")}
