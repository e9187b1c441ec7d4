"""The cart as a shopper uses it: add, change, remove, with stock bounds and messages."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from shop.models import Cart, CartItem
from shop.services import SESSION_CART_KEY
from tests.factories import CartFactory, CartItemFactory, ProductFactory
from tests.shop_pages import add_to_cart, messages_of, put_in_cart

pytestmark = pytest.mark.django_db

CART_URL = reverse("shop:cart")


def lines_of(client):
    """{product id: quantity} of the cart the client's browser owns."""
    return {row["line"].product_id: row["line"].quantity for row in client.get(CART_URL).context["rows"]}


def test_visitor_adds_a_product_and_returns_to_the_page(client, product):
    response = add_to_cart(client, product, 2, next="/?gender=Men")

    assert response.status_code == 302
    assert response.url == "/?gender=Men"
    assert messages_of(response) == [("success", f"Added {product.name} to your cart.")]
    assert lines_of(client) == {product.pk: 2}


def test_adding_again_adds_up(client, product):
    put_in_cart(client, product, 2)
    put_in_cart(client, product, 3)

    assert lines_of(client) == {product.pk: 5}


@pytest.mark.parametrize(
    "unsafe", ["https://evil.example.com/", "//evil.example.com/", "javascript:alert(1)"]
)
def test_next_must_stay_on_the_site(client, product, unsafe):
    response = add_to_cart(client, product, next=unsafe)

    assert response.url == CART_URL


def test_adding_more_than_stock_is_capped_with_a_warning(client):
    product = ProductFactory(stock=3)

    response = add_to_cart(client, product, 5)

    assert messages_of(response) == [
        ("warning", f"Only 3 of {product.name} can be ordered; quantity set to 3."),
    ]
    assert lines_of(client) == {product.pk: 3}


def test_quantity_is_capped_at_the_cart_maximum(client, settings):
    product = ProductFactory(stock=500)

    put_in_cart(client, product, 150)

    assert lines_of(client) == {product.pk: settings.CART_MAX_QUANTITY}


@pytest.mark.parametrize(
    "make_product, quantity, message",
    [
        (lambda: ProductFactory(stock=0, name="Gone Tee"), 1, "Sorry, Gone Tee is out of stock."),
        (lambda: ProductFactory(is_active=False, name="Old Tee"), 1, "Old Tee is no longer sold."),
        (lambda: ProductFactory(), "two", "Quantity must be a whole number."),
        (lambda: ProductFactory(), 0, "Quantity must be at least 1."),
        (lambda: ProductFactory(), -2, "Quantity cannot be negative."),
    ],
)
def test_refused_additions_show_an_error_and_change_nothing(client, make_product, quantity, message):
    product = make_product()

    response = add_to_cart(client, product, quantity)

    assert response.status_code == 302
    assert messages_of(response) == [("error", message)]
    assert lines_of(client) == {}


@pytest.mark.parametrize("product_id", ["", "abc", "999999"])
def test_unknown_products_are_an_error_not_a_crash(client, product_id):
    response = client.post(reverse("shop:add"), {"product_id": product_id})

    assert response.status_code == 302
    assert messages_of(response) == [("error", "This product does not exist.")]


@pytest.mark.parametrize("name", ["shop:add", "shop:update", "shop:remove"])
def test_changes_need_a_post(client, name):
    assert client.get(reverse(name)).status_code == 405


def test_add_answers_json_for_scripts(client, product):
    put_in_cart(client, product, 1)

    response = client.post(
        reverse("shop:add"), {"product_id": product.pk, "quantity": 2}, headers={"accept": "application/json"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "level": "success",
        "message": f"Added {product.name} to your cart.",
        "product_id": product.pk,
        "quantity": 3,
        "cart_count": 3,
    }
    # The script shows the message itself: it must not pop up again on the next page.
    assert messages_of(client.get(CART_URL)) == []


def test_add_json_error(client):
    product = ProductFactory(stock=0)

    response = client.post(
        reverse("shop:add"), {"product_id": product.pk}, headers={"accept": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert response.json()["level"] == "error"
    assert response.json()["cart_count"] == 0


def test_browser_accept_header_gets_a_redirect(client, product):
    response = add_to_cart(client, product, headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})

    assert response.status_code == 302


def test_update_sets_the_quantity(client):
    product = ProductFactory(stock=10)
    put_in_cart(client, product, 1)

    response = client.post(reverse("shop:update"), {"product_id": product.pk, "quantity": 4})

    assert response.url == CART_URL
    assert messages_of(response) == [("success", f"Updated {product.name} to 4.")]
    assert lines_of(client) == {product.pk: 4}


def test_update_above_stock_is_capped_with_a_warning(client):
    product = ProductFactory(stock=4)
    put_in_cart(client, product, 1)

    response = client.post(reverse("shop:update"), {"product_id": product.pk, "quantity": 9})

    assert messages_of(response)[0][0] == "warning"
    assert lines_of(client) == {product.pk: 4}


def test_update_to_zero_removes_the_line(client, product):
    put_in_cart(client, product, 2)

    client.post(reverse("shop:update"), {"product_id": product.pk, "quantity": 0})

    assert lines_of(client) == {}


@pytest.mark.parametrize("quantity", ["", "x", "-1"])
def test_update_with_a_bad_quantity_keeps_the_line(client, product, quantity):
    put_in_cart(client, product, 2)

    response = client.post(reverse("shop:update"), {"product_id": product.pk, "quantity": quantity})

    assert messages_of(response)[0][0] == "error"
    assert lines_of(client) == {product.pk: 2}


def test_remove_takes_the_line_out(client):
    keep, drop = ProductFactory(), ProductFactory()
    put_in_cart(client, keep)
    put_in_cart(client, drop)

    response = client.post(reverse("shop:remove"), {"product_id": drop.pk})

    assert messages_of(response) == [("success", f"Removed {drop.name} from your cart.")]
    assert lines_of(client) == {keep.pk: 1}


@pytest.mark.parametrize("product_id", ["abc", "", "424242"])
def test_changing_a_product_not_in_the_cart_is_an_error(client, product, product_id):
    put_in_cart(client, product)

    response = client.post(reverse("shop:update"), {"product_id": product_id, "quantity": 1})

    assert response.status_code == 302
    assert messages_of(response) == [("error", "This product is not in your cart.")]


def test_changing_without_a_cart_is_an_error(client, product):
    response = client.post(reverse("shop:remove"), {"product_id": product.pk})

    assert messages_of(response) == [("error", "Your cart is empty.")]
    assert not Cart.objects.exists()


def test_cart_page_shows_lines_totals_and_checkout(client):
    shirt = ProductFactory(name="Linen Shirt", price="30.00", with_image=True)
    socks = ProductFactory(name="Wool Socks", price="4.50")
    put_in_cart(client, shirt, 2)
    put_in_cart(client, socks, 3)

    page = client.get(CART_URL).content.decode()

    assert "Linen Shirt" in page and "Wool Socks" in page
    assert f'src="{shirt.image_url}"' in page
    assert "€60.00" in page and "€13.50" in page
    assert "5 items" in page and "€73.50" in page
    assert f'href="{reverse("shop:checkout")}"' in page
    assert "<span data-cart-count>5</span>" in page


def test_cart_page_flags_lines_that_cannot_be_bought_any_more(client):
    shrinking = ProductFactory(stock=5)
    withdrawn = ProductFactory()
    put_in_cart(client, shrinking, 4)
    put_in_cart(client, withdrawn, 1)
    shrinking.stock = 2
    shrinking.save()
    withdrawn.is_active = False
    withdrawn.save()

    page = client.get(CART_URL).content.decode()

    assert "Only 2 left; please lower the quantity." in page
    assert "No longer sold; please remove it." in page


def test_empty_cart_page(client):
    response = client.get(CART_URL)

    assert response.status_code == 200
    assert "Your cart is empty" in response.content.decode()


def test_visitors_never_see_each_others_carts(client, product):
    put_in_cart(client, product, 2)
    stranger = Client()

    assert lines_of(stranger) == {}
    assert "<span data-cart-count>0</span>" in stranger.get("/").content.decode()


def test_a_change_applies_to_the_cart_of_the_session(client, product):
    put_in_cart(client, product, 2)
    stranger = Client()
    put_in_cart(stranger, product, 3)

    stranger.post(reverse("shop:remove"), {"product_id": product.pk})

    assert lines_of(stranger) == {}
    assert lines_of(client) == {product.pk: 2}


@pytest.mark.parametrize("owner", ["shopper", "ordered"])
def test_a_session_naming_a_cart_that_is_not_an_open_visitor_cart_reaches_nothing(
    client, user, product, owner
):
    # A stale or forged session: it names a shopper's cart, or a visitor cart already ordered.
    cart = (
        CartFactory(user=user) if owner == "shopper" else CartFactory(user=None, status=Cart.Status.ORDERED)
    )
    CartItemFactory(cart=cart, product=product, quantity=2)
    session = client.session
    session[SESSION_CART_KEY] = cart.pk
    session.save()

    client.post(reverse("shop:remove"), {"product_id": product.pk})

    assert CartItem.objects.get(cart=cart).quantity == 2
    assert lines_of(client) == {}


def test_csrf_is_enforced_on_cart_changes(product):
    browser = Client(enforce_csrf_checks=True)

    refused = browser.post(reverse("shop:add"), {"product_id": product.pk})

    assert refused.status_code == 403
    assert not CartItem.objects.exists()

    page = browser.get(product.get_absolute_url()).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    accepted = browser.post(reverse("shop:add"), {"product_id": product.pk, "csrfmiddlewaretoken": token})

    assert accepted.status_code == 302
    assert CartItem.objects.get().quantity == 1
