"""Checkout through the pages: shipping form, order with snapshots, stock, double submits."""

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

import shop.views
from catalog.models import Product
from shop.models import Cart, Order
from tests.factories import CartFactory, ProductFactory
from tests.shop_pages import checkout_form, messages_of, put_in_cart

pytestmark = pytest.mark.django_db

CHECKOUT_URL = reverse("shop:checkout")


def test_checkout_with_an_empty_cart_goes_back_to_the_cart(client):
    response = client.get(CHECKOUT_URL)

    assert response.url == reverse("shop:cart")
    assert messages_of(response) == [("info", "Your cart is empty.")]


def test_checkout_page_summarises_the_cart(client):
    shirt = ProductFactory(name="Linen Shirt", price="30.00")
    put_in_cart(client, shirt, 2)

    response = client.get(CHECKOUT_URL)

    page = response.content.decode()
    assert "2 × Linen Shirt" in page
    assert "Place order · €60.00" in page
    assert response.context["form"].initial["cart"] == Cart.objects.get().pk


def test_checkout_prefills_the_shoppers_email(user_client, user, product):
    put_in_cart(user_client, product)

    form = user_client.get(CHECKOUT_URL).context["form"]

    assert form.initial["email"] == user.email


def test_visitor_places_an_order(client, shipping):
    shirt = ProductFactory(name="Linen Shirt", price="30.00", stock=5)
    socks = ProductFactory(name="Wool Socks", price="4.50", stock=10)
    put_in_cart(client, shirt, 2)
    put_in_cart(client, socks, 3)

    response = client.post(CHECKOUT_URL, checkout_form(client))

    order = Order.objects.get()
    assert response.url == reverse("shop:order_confirmation", args=[order.number])
    assert order.user is None
    assert order.total == Decimal("73.50")
    assert (order.full_name, order.email, order.city) == (
        shipping["full_name"],
        shipping["email"],
        shipping["city"],
    )
    assert [(i.product_id, i.product_name, i.unit_price, i.quantity) for i in order.items.all()] == [
        (shirt.pk, "Linen Shirt", Decimal("30.00"), 2),
        (socks.pk, "Wool Socks", Decimal("4.50"), 3),
    ]
    assert Product.objects.get(pk=shirt.pk).stock == 3
    assert Product.objects.get(pk=socks.pk).stock == 7
    assert Cart.objects.get().status == Cart.Status.ORDERED

    confirmation = client.get(response.url)
    assert confirmation.status_code == 200
    page = confirmation.content.decode()
    assert order.number in page and "Linen Shirt" in page and "€73.50" in page
    assert "<span data-cart-count>0</span>" in page
    assert "Your cart is empty" in client.get(reverse("shop:cart")).content.decode()


def test_signed_in_shopper_places_an_order_on_their_account(user_client, user, product):
    put_in_cart(user_client, product, 2)

    user_client.post(CHECKOUT_URL, checkout_form(user_client))

    order = Order.objects.get()
    assert order.user == user
    assert user_client.get(reverse("shop:order_detail", args=[order.number])).status_code == 200


def test_order_lines_keep_the_price_and_name_paid(user_client, product):
    put_in_cart(user_client, product, 1)
    user_client.post(CHECKOUT_URL, checkout_form(user_client))
    order = Order.objects.get()
    paid_name, paid_price = product.name, product.price

    product.name, product.price = "Renamed Tee", Decimal("99.00")
    product.save()

    page = user_client.get(reverse("shop:order_detail", args=[order.number])).content.decode()
    assert paid_name in page and f"€{paid_price}" in page
    assert "Renamed Tee" not in page and "€99.00" not in page


@pytest.mark.parametrize("missing", ["full_name", "email", "address", "city", "postal_code", "country"])
def test_incomplete_shipping_details_are_asked_again(client, product, missing):
    put_in_cart(client, product)
    data = checkout_form(client)
    data[missing] = ""

    response = client.post(CHECKOUT_URL, data)

    assert response.status_code == 200
    assert response.context["form"].errors[missing] == ["This field is required."]
    assert 'value="Ada Shopper"' in response.content.decode() or missing == "full_name"
    assert not Order.objects.exists()


def test_not_enough_stock_is_a_message_and_nothing_is_sold(client):
    scarce = ProductFactory(name="Last Jacket", stock=3)
    plenty = ProductFactory(stock=10)
    put_in_cart(client, plenty, 1)
    put_in_cart(client, scarce, 3)
    data = checkout_form(client)
    Product.objects.filter(pk=scarce.pk).update(stock=1)  # someone else bought two meanwhile

    response = client.post(CHECKOUT_URL, data)

    assert response.url == reverse("shop:cart")
    level, text = messages_of(response)[0]
    assert level == "error" and "not enough Last Jacket in stock" in text
    assert not Order.objects.exists()
    assert Product.objects.get(pk=plenty.pk).stock == 10
    assert Product.objects.get(pk=scarce.pk).stock == 1
    assert Cart.objects.get().status == Cart.Status.OPEN


def test_double_submit_places_one_order_and_shows_it(client, product):
    put_in_cart(client, product, 2)
    data = checkout_form(client)

    first = client.post(CHECKOUT_URL, data)
    second = client.post(CHECKOUT_URL, data)

    order = Order.objects.get()
    assert first.url == second.url == reverse("shop:order_confirmation", args=[order.number])
    assert ("info", f"Order {order.number} has already been placed; it was not placed twice.") in messages_of(
        second
    )
    assert Product.objects.get(pk=product.pk).stock == product.stock - 2


def test_resubmitting_an_old_checkout_page_does_not_order_the_new_cart(user_client, product):
    put_in_cart(user_client, product, 1)
    old_page = checkout_form(user_client)
    user_client.post(CHECKOUT_URL, old_page)
    later = ProductFactory()
    put_in_cart(user_client, later, 1)

    response = user_client.post(CHECKOUT_URL, old_page)

    assert Order.objects.count() == 1
    assert response.url == reverse("shop:order_confirmation", args=[Order.objects.get().number])
    assert Cart.objects.get(status=Cart.Status.OPEN).items.get().product == later


def test_checkout_page_submitted_after_another_tab_ordered_the_cart(user_client, user, product):
    put_in_cart(user_client, product, 1)
    data = checkout_form(user_client)
    other_tab = Client()  # another session of the same shopper
    other_tab.force_login(user)
    other_tab.post(CHECKOUT_URL, data)

    response = user_client.post(CHECKOUT_URL, data)

    assert Order.objects.count() == 1
    assert response.url == reverse("shop:order_history")
    assert messages_of(response) == [
        ("info", "This cart has already been checked out; your order was placed once."),
    ]


def test_checkout_racing_another_checkout_of_the_same_cart(user_client, user, product, monkeypatch):
    """The request read the open cart just before another request turned it into an order."""
    put_in_cart(user_client, product, 1)
    data = checkout_form(user_client)
    cart_as_read = Cart.objects.get()
    other_tab = Client()
    other_tab.force_login(user)
    other_tab.post(CHECKOUT_URL, data)
    monkeypatch.setattr(shop.views, "get_cart", lambda request, create=False: cart_as_read)

    response = user_client.post(CHECKOUT_URL, data)

    assert Order.objects.count() == 1
    assert Product.objects.get(pk=product.pk).stock == product.stock - 1
    assert response.url == reverse("shop:order_history")
    assert messages_of(response)[0][0] == "info"


def test_someone_elses_cart_id_in_the_form_is_ignored(user_client, other_user, product):
    theirs = CartFactory(user=other_user, status=Cart.Status.ORDERED)
    put_in_cart(user_client, product, 1)
    data = {**checkout_form(user_client), "cart": theirs.pk}

    response = user_client.post(CHECKOUT_URL, data)

    order = Order.objects.get()
    assert response.url == reverse("shop:order_confirmation", args=[order.number])
    assert order.items.get().product == product


def test_checkout_needs_csrf(product):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(product.get_absolute_url()).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    browser.post(reverse("shop:add"), {"product_id": product.pk, "csrfmiddlewaretoken": token})
    data = checkout_form(browser)

    refused = browser.post(CHECKOUT_URL, data)

    assert refused.status_code == 403
    assert not Order.objects.exists()
    assert Product.objects.get(pk=product.pk).stock == product.stock
    # The same form with the token places the order: only the token was missing.
    browser.post(CHECKOUT_URL, {**data, "csrfmiddlewaretoken": token})
    assert Order.objects.get().items.get().product == product
