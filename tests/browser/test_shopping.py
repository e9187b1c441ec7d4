"""A shopper in a real browser: browse, similar products, cart, checkout, login, phone."""

import re

import numpy as np
import pytest
from playwright.sync_api import expect

from catalog.models import Product
from recommender.refresh import rebuild_index
from shop.models import Order
from tests.factories import CartFactory, CartItemFactory, EmbeddingFactory, ProductFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHIPPING = {
    "Full name": "Ada Shopper",
    "Email": "ada@example.com",
    "Address": "1 Main Street",
    "City": "Springfield",
    "Postal code": "12345",
    "Country": "Netherlands",
}


@pytest.fixture
def catalogue():
    """Six jackets and six shirts; the vectors put each kind in its own tight cluster."""
    rng = np.random.default_rng(3)
    kinds = {"Jackets": np.eye(1, 16, 0)[0] * 10, "Shirts": np.eye(1, 16, 1)[0] * 10}
    products = {}
    for article_type, centre in kinds.items():
        names = [f"Indigo Denim {article_type[:-1]}"] + [
            f"{colour} {article_type[:-1]}" for colour in ("Navy", "Black", "Olive", "Grey", "Sand")
        ]
        products[article_type] = []
        for name in names:
            product = ProductFactory(name=name, article_type=article_type, price="25.00", stock=10)
            EmbeddingFactory(product=product, cnn=centre + rng.normal(0, 0.3, 16))
            products[article_type].append(product)
    rebuild_index()
    return products


def fill_shipping(page):
    for label, value in SHIPPING.items():
        page.get_by_label(f"{label}:", exact=True).fill(value)


def cart_count(page):
    return page.locator(".site-header [data-cart-count]")


def test_shopper_finds_a_jacket_adds_similar_items_and_checks_out(live_server, page, catalogue):
    jacket, *other_jackets = catalogue["Jackets"]
    page.goto(live_server.url + "/")
    expect(page.locator(".results .product-card")).to_have_count(12)

    # The filter applies itself as soon as a value is chosen.
    page.get_by_label("Type").select_option("Jackets")
    expect(page).to_have_url(f"{live_server.url}/?articleType=Jackets")
    expect(page.locator(".results .product-card")).to_have_count(6)
    expect(page.locator(".results__count")).to_have_text("6 products")

    page.get_by_role("searchbox", name="Search products").fill("indigo jacket")
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.locator(".results .product-card")
    expect(results).to_have_count(1)
    results.get_by_role("link", name=jacket.name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(jacket.name)

    similar = page.locator("section.similar .product-card")
    expect(similar).to_have_count(5)
    assert sorted(similar.locator(".product-card__name").all_inner_texts()) == sorted(
        p.name for p in other_jackets
    )
    expect(similar.get_by_role("button", name="Add to cart")).to_have_count(5)

    # Adding stays on the page: a value kept by the window survives, the address is unchanged.
    product_url = page.url
    page.evaluate("() => { window.pageNotReloaded = true; }")
    first_similar = similar.first
    chosen_name = first_similar.locator(".product-card__name").inner_text()
    first_similar.get_by_role("button", name="Add to cart").click()
    expect(cart_count(page)).to_have_text("1")
    added = page.locator("[data-messages] .message--success")
    expect(added).to_have_text(f"Added {chosen_name} to your cart.")
    assert page.evaluate("() => window.pageNotReloaded") is True
    assert page.url == product_url

    page.get_by_label("Quantity").fill("2")
    page.locator(".product__buy").get_by_role("button", name="Add to cart").click()
    expect(cart_count(page)).to_have_text("3")
    assert page.evaluate("() => window.pageNotReloaded") is True

    page.get_by_role("link", name="Cart (3)").click()
    expect(page.locator("tr.line")).to_have_count(2)
    chosen = Product.objects.get(name=chosen_name)
    page.get_by_label(f"Quantity of {chosen.name}").fill("3")
    page.locator("tr.line", has_text=chosen.name).get_by_role("button", name="Update").click()
    expect(page.locator("[data-messages]")).to_contain_text(f"Updated {chosen.name} to 3.")
    expect(cart_count(page)).to_have_text("5")
    expect(page.locator("tfoot .total")).to_have_text("€125.00")

    page.get_by_role("link", name="Checkout").click()
    fill_shipping(page)
    page.get_by_role("button", name="Place order · €125.00").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your order")
    order = Order.objects.get()
    expect(page.locator(".lead strong")).to_have_text(order.number)
    expect(cart_count(page)).to_have_text("0")
    assert sorted((item.product_name, item.quantity) for item in order.items.all()) == sorted(
        [(chosen.name, 3), (jacket.name, 2)]
    )
    page.get_by_role("link", name="Cart (0)").click()
    expect(page.locator(".empty")).to_contain_text("Your cart is empty.")
    assert Product.objects.get(pk=chosen.pk).stock == 7
    assert Product.objects.get(pk=jacket.pk).stock == 8


def test_without_javascript_the_plain_forms_add_to_cart_and_check_out(
    live_server, page_without_js, catalogue
):
    page = page_without_js
    jacket = catalogue["Jackets"][0]
    page.goto(live_server.url + "/")
    page.get_by_label("Type").select_option("Shirts")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(".results .product-card")).to_have_count(6)

    page.goto(f"{live_server.url}{jacket.get_absolute_url()}")
    page.get_by_label("Quantity").fill("2")
    page.locator(".product__buy").get_by_role("button", name="Add to cart").click()

    # The form posts, then the shopper is sent back to the product with the new count.
    expect(page).to_have_url(f"{live_server.url}{jacket.get_absolute_url()}")
    expect(cart_count(page)).to_have_text("2")
    expect(page.locator("[data-messages]")).to_contain_text(f"Added {jacket.name} to your cart.")

    page.locator("section.similar .product-card").first.get_by_role("button", name="Add to cart").click()
    expect(cart_count(page)).to_have_text("3")

    page.get_by_role("link", name="Cart (3)").click()
    page.get_by_role("link", name="Checkout").click()
    fill_shipping(page)
    page.get_by_role("button", name="Place order · €75.00").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your order")
    expect(page.locator(".lead strong")).to_have_text(Order.objects.get().number)
    expect(cart_count(page)).to_have_text("0")
    assert Product.objects.get(pk=jacket.pk).stock == 8


@pytest.mark.parametrize("browser_page", ["page", "page_without_js"])
def test_a_double_click_on_place_order_places_one_order(live_server, request, browser_page):
    page = request.getfixturevalue(browser_page)
    shirt = ProductFactory(name="Linen Shirt", price="30.00", stock=5)
    page.goto(f"{live_server.url}{shirt.get_absolute_url()}")
    page.locator(".product__buy").get_by_role("button", name="Add to cart").click()
    expect(cart_count(page)).to_have_text("1")
    page.goto(f"{live_server.url}/cart/checkout/")
    fill_shipping(page)

    page.get_by_role("button", name="Place order · €30.00").dblclick()

    # Whichever request wins, the shopper is told about exactly one order.
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile("Thank you for your order|Your cart"))
    assert Order.objects.count() == 1
    assert Product.objects.get(pk=shirt.pk).stock == 4
    expect(cart_count(page)).to_have_text("0")


def test_two_checkout_submissions_in_flight_at_once_place_one_order(live_server, page):
    shirt = ProductFactory(name="Linen Shirt", price="30.00", stock=5)
    page.goto(f"{live_server.url}{shirt.get_absolute_url()}")
    page.locator(".product__buy").get_by_role("button", name="Add to cart").click()
    expect(cart_count(page)).to_have_text("1")
    page.goto(f"{live_server.url}/cart/checkout/")
    fill_shipping(page)

    # What a browser without the page script may do: send the form twice before either answers.
    answers = page.evaluate(
        """async () => {
            const form = document.querySelector("form[data-submit-once]");
            const send = () => fetch(form.action, {method: "POST", body: new FormData(form)})
                .then((response) => ({status: response.status, url: response.url}));
            return Promise.all([send(), send()]);
        }"""
    )

    order = Order.objects.get()
    assert [answer["status"] for answer in answers] == [200, 200]
    confirmation = f"{live_server.url}/cart/orders/{order.number}/confirmation/"
    assert confirmation in [answer["url"] for answer in answers]
    assert Product.objects.get(pk=shirt.pk).stock == 4
    page.goto(f"{live_server.url}/cart/orders/{order.number}/confirmation/")
    expect(page.locator(".lead strong")).to_have_text(order.number)
    expect(cart_count(page)).to_have_text("0")


def test_placing_the_order_again_from_a_second_tab_shows_the_same_order(live_server, page):
    shirt = ProductFactory(name="Linen Shirt", price="30.00", stock=5)
    page.goto(f"{live_server.url}{shirt.get_absolute_url()}")
    page.locator(".product__buy").get_by_role("button", name="Add to cart").click()
    expect(cart_count(page)).to_have_text("1")
    page.goto(f"{live_server.url}/cart/checkout/")
    second_tab = page.context.new_page()
    second_tab.goto(f"{live_server.url}/cart/checkout/")
    fill_shipping(page)
    page.get_by_role("button", name="Place order · €30.00").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your order")
    number = Order.objects.get().number

    fill_shipping(second_tab)
    second_tab.get_by_role("button", name="Place order · €30.00").click()

    expect(second_tab.locator(".lead strong")).to_have_text(number)
    expect(second_tab.locator("[data-messages]")).to_contain_text(f"Order {number} has already been placed")
    assert Order.objects.count() == 1
    assert Product.objects.get(pk=shirt.pk).stock == 4


def test_logging_in_keeps_the_visitors_cart(live_server, page):
    shopper = UserFactory(username="ada")
    boots = ProductFactory(name="Chelsea Boots", price="80.00")
    scarf = ProductFactory(name="Wool Scarf", price="15.00")
    # Left in the account's cart on an earlier visit.
    CartItemFactory(cart=CartFactory(user=shopper), product=scarf, quantity=1)

    page.goto(f"{live_server.url}{boots.get_absolute_url()}")
    page.locator(".product__buy").get_by_role("button", name="Add to cart").click()
    expect(cart_count(page)).to_have_text("1")

    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()

    # Back on the product, signed in, with both carts in one.
    expect(page).to_have_url(f"{live_server.url}{boots.get_absolute_url()}")
    expect(page.locator(".site-nav__user")).to_have_text("ada")
    expect(cart_count(page)).to_have_text("2")
    page.get_by_role("link", name="Cart (2)").click()
    expect(page.locator("tr.line .line__product a")).to_have_text(["Wool Scarf", "Chelsea Boots"])


def test_on_a_phone_the_pages_do_not_scroll_sideways(live_server, mobile_page):
    page = mobile_page
    name = "Peter England Men Party Wear Slim Fit Checked Cotton Shirt"
    products = [ProductFactory(name=f"{name} {n}", price="1299.00") for n in range(30)]
    pages = ["/", "/?q=cotton&articleType=Tshirts", products[0].get_absolute_url(), "/visual/search/"]
    for path in pages:
        page.goto(live_server.url + path)
        assert page.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth"), path

    page.goto(live_server.url + "/")
    expect(page.locator(".results .product-card")).to_have_count(24)
    page.locator(".results .product-card").first.get_by_role("button", name="Add to cart").click()
    expect(cart_count(page)).to_have_text("1")
    for path in ["/cart/", "/cart/checkout/"]:
        page.goto(live_server.url + path)
        assert page.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth"), path
