"""The whole shopping journey in a real browser, with JavaScript and without it: browse,
filter, a product and its similar items, search by a shopper's own photo, cart, sign-up,
checkout and the placed order, with a screenshot of every step (SCREENSHOT_DIR)."""

import re
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from playwright.sync_api import expect

from catalog.importing.styles import read_styles
from catalog.models import Product
from catalog.templatetags.money import money
from recommender.embedding.protocols import shopper_photo_rows
from recommender.models import Embedding
from recommender.refresh import rebuild_index
from shop.models import Order
from tests.browser.media import assert_photo_shown, serve_media
from tests.factories import SHIPPING, ProductFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# (article type, gender, how many): the first such rows of the real catalogue sample,
# few enough to fit on the first page of the catalogue.
KINDS = [("Tshirts", "Men", 6), ("Tshirts", "Women", 3), ("Shirts", "Men", 5), ("Tops", "Women", 3)]
KINDS += [("Casual Shoes", "Men", 5)]
STOCK = 10
USERNAME, PASSWORD = "journey-shopper", "a long walk through the shop"
SHIPPING_LABELS = {
    "full_name": "Full name",
    "address": "Address",
    "city": "City",
    "postal_code": "Postal code",
    "country": "Country",
}


@pytest.fixture
def real_catalogue(fashion_dev, media_root, cnn):
    """Products of the real catalogue sample with their photos, embedded by the real CNN."""
    styles = read_styles((fashion_dev / "styles.csv").read_bytes())
    photo = {row.id: fashion_dev / "images" / f"{row.id}.jpg" for row in styles.rows}
    rows = []
    for article_type, gender, count in KINDS:
        kind = [
            row
            for row in styles.rows
            if (row.values.get("article_type"), row.values.get("gender")) == (article_type, gender)
            and photo[row.id].exists()
        ]
        rows += kind[:count]
    # Committing the transaction embeds all photos in one batch (tasks run in-process here).
    with transaction.atomic():
        products = [
            ProductFactory(
                id=row.id,
                **row.values,
                price=Decimal("19.50") + n,
                stock=STOCK,
                image=ContentFile(photo[row.id].read_bytes(), name=f"{row.id}.jpg"),
            )
            for n, row in enumerate(rows)
        ]
    assert Embedding.objects.filter(product__in=products).count() == len(products)
    rebuild_index()
    return {product.pk: product for product in products}


@pytest.fixture(scope="session")
def shopper_photo(clothing_photos):
    """The first photo an adult took of their own T-shirt."""
    return next(path for _, path, label, _ in shopper_photo_rows(clothing_photos) if label == "T-Shirt")


def card_ids(cards):
    """Product ids of product cards, in page order."""
    hrefs = cards.locator("a.product-card__link").evaluate_all("links => links.map(l => l.pathname)")
    return [int(re.fullmatch(r"/products/(\d+)/", href).group(1)) for href in hrefs]


def order_rows(page):
    """Product, price, quantity and total of every line of the order shown."""
    return sorted(
        page.locator("table.lines tbody tr").evaluate_all(
            "rows => rows.map(row => Array.from(row.cells, cell => cell.innerText.trim()))"
        )
    )


@pytest.mark.parametrize("mode", ["with-javascript", "without-javascript"])
def test_a_shopper_walks_from_the_home_page_to_a_placed_order(
    live_server, request, mode, shopper_photo, real_catalogue, step_screenshots
):
    javascript = mode == "with-javascript"
    page = request.getfixturevalue("page" if javascript else "page_without_js")
    serve_media(page)
    shoot = step_screenshots(page, mode)
    try:
        walk_the_journey(page, live_server.url, real_catalogue, shopper_photo, shoot, javascript)
    except Exception:
        shoot("failed")
        raise


def walk_the_journey(page, url, catalogue, photo, shoot, javascript):
    messages = page.locator("[data-messages]")
    cart_count = page.locator(".site-header [data-cart-count]")
    heading = page.get_by_role("heading", level=1)

    # The home page shows the whole catalogue.
    page.goto(url + "/")
    results = page.locator(".results .product-card")
    expect(results).to_have_count(len(catalogue))
    expect(page.locator(".results__count")).to_have_text(f"{len(catalogue)} products")
    shoot("home")

    # Choosing a type narrows the list to it (by itself with JavaScript, by button without).
    tshirts = sorted(pk for pk, product in catalogue.items() if product.article_type == "Tshirts")
    page.get_by_label("Type").select_option("Tshirts")
    if not javascript:
        page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(".results__count")).to_have_text(f"{len(tshirts)} products")
    expect(results).to_have_count(len(tshirts))
    assert sorted(card_ids(results)) == tshirts
    expect(page.get_by_role("link", name="Remove Type: Tshirts")).to_be_visible()
    shoot("filtered")

    # A product page: its real photo and five similar products, never itself.
    product = catalogue[card_ids(results.first)[0]]
    results.first.locator("a.product-card__link").click()
    expect(heading).to_have_text(product.display_name)
    assert_photo_shown(page.locator("img.product__image"))
    similar = page.locator("section.similar .product-card")
    expect(similar).to_have_count(5)
    similar_ids = card_ids(similar)
    assert len(set(similar_ids)) == 5
    assert product.pk not in similar_ids
    assert set(similar_ids) <= set(catalogue)
    shoot("product")

    # Adding a similar product keeps the shopper on the product page.
    chosen = catalogue[similar_ids[0]]
    if javascript:
        page.evaluate("() => { window.notReloaded = true; }")
    similar.first.get_by_role("button", name="Add to cart").click()
    expect(cart_count).to_have_text("1")
    expect(messages).to_contain_text(f"Added {chosen.display_name} to your cart.")
    expect(page).to_have_url(url + product.get_absolute_url())
    if javascript:
        assert page.evaluate("() => window.notReloaded") is True
    shoot("similar-added")

    # Search with a real photo a shopper took of their T-shirt.
    page.get_by_role("link", name="Search by photo").click()
    page.get_by_label("Your photo").set_input_files(photo)
    page.get_by_role("button", name="Find similar items").click()
    expect(page.get_by_role("heading", name="Your photo")).to_be_visible()
    assert_photo_shown(page.locator("img.photo-search__query-image"))
    found = page.locator("[data-search-results] .product-card")
    expect(found).to_have_count(5)
    found_ids = card_ids(found)
    assert len(set(found_ids)) == 5
    assert set(found_ids) <= set(catalogue)
    # A photo of a T-shirt finds tops, not shoes.
    assert not {catalogue[pk].article_type for pk in found_ids} & {"Casual Shoes"}
    shoot("photo-search")

    # One of the results that is not in the cart yet goes in.
    position = next(n for n, pk in enumerate(found_ids) if pk != chosen.pk)
    picked = catalogue[found_ids[position]]
    found.nth(position).get_by_role("button", name="Add to cart").click()
    expect(cart_count).to_have_text("2")
    expect(messages).to_contain_text(f"Added {picked.display_name} to your cart.")
    shoot("photo-result-added")

    # In the cart, three of the photo's match instead of one.
    page.get_by_role("link", name="Cart (2)").click()
    expect(page.locator("tr.line .line__product a")).to_have_text([chosen.display_name, picked.display_name])
    page.get_by_label(f"Quantity of {picked.display_name}").fill("3")
    page.locator("tr.line", has=page.get_by_role("link", name=picked.display_name, exact=True)).get_by_role(
        "button", name="Update"
    ).click()
    expect(messages).to_contain_text(f"Updated {picked.display_name} to 3.")
    expect(cart_count).to_have_text("4")
    total = chosen.price + 3 * picked.price
    expect(page.locator("tfoot .total")).to_have_text(money(total))
    shoot("cart")

    # Signing up signs the shopper in; the cart comes along.
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Email").fill(SHIPPING["email"])
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    shoot("sign-up")
    page.get_by_role("button", name="Sign up").click()
    expect(messages).to_contain_text(f"Welcome, {USERNAME}! Your account is ready.")
    expect(page.locator(".site-nav__user")).to_have_text(USERNAME)
    expect(cart_count).to_have_text("4")

    # Checkout: the account's email is filled in, the rest is typed.
    page.get_by_role("link", name="Cart (4)").click()
    page.get_by_role("link", name="Checkout").click()
    expect(page.get_by_label("Email")).to_have_value(SHIPPING["email"])
    for field, label in SHIPPING_LABELS.items():
        page.get_by_label(label).fill(SHIPPING[field])
    shoot("checkout")
    page.get_by_role("button", name=f"Place order · {money(total)}").click()

    # The confirmation and the account's order page show the items and the total.
    expect(heading).to_have_text("Thank you for your order")
    order = Order.objects.get()
    expect(page.locator(".lead strong")).to_have_text(order.number)
    expect(cart_count).to_have_text("0")
    lines = sorted(
        [
            [chosen.display_name, money(chosen.price), "1", money(chosen.price)],
            [picked.display_name, money(picked.price), "3", money(3 * picked.price)],
        ]
    )
    assert order_rows(page) == lines
    expect(page.locator("table.lines tfoot .total")).to_have_text(money(total))
    shoot("order-confirmation")

    page.get_by_role("link", name="Your orders").click()
    page.get_by_role("link", name=order.number).click()
    expect(heading).to_have_text(f"Order {order.number}")
    assert order_rows(page) == lines
    expect(page.locator("table.lines tfoot .total")).to_have_text(money(total))
    shoot("order")

    # The database agrees: one order of the new account, its lines, and the stock taken.
    assert order.user.username == USERNAME
    assert order.status == Order.Status.PLACED
    assert order.total == total
    assert (order.full_name, order.email, order.city) == (
        SHIPPING["full_name"],
        SHIPPING["email"],
        "Springfield",
    )
    assert sorted((item.product_id, item.unit_price, item.quantity) for item in order.items.all()) == sorted(
        [(chosen.pk, chosen.price, 1), (picked.pk, picked.price, 3)]
    )
    stock = dict(Product.objects.values_list("pk", "stock"))
    assert stock == {pk: STOCK for pk in catalogue} | {chosen.pk: STOCK - 1, picked.pk: STOCK - 3}
