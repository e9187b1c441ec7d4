"""Search by photo in a real browser: upload a photo, a bad file, or pick a catalogue photo."""

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from playwright.sync_api import expect

from catalog.models import Product, file_checksum
from recommender.refresh import embed_products, rebuild_index
from tests.browser.media import serve_media
from tests.factories import EmbeddingFactory, ProductFactory
from tests.images import image_bytes, two_garments_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RED, BLUE, GREEN = (200, 30, 30), (30, 60, 200), (40, 160, 60)


def with_stored_photo(product, colour):
    """Give a product a photo file without the save signal that would run the CNN on it."""
    photo = ContentFile(image_bytes(colour), name=f"{product.pk}.jpg")
    name = default_storage.save(f"products/{product.pk}.jpg", photo)
    Product.objects.filter(pk=product.pk).update(image=name, image_checksum=file_checksum(photo))
    return Product.objects.get(pk=product.pk)


@pytest.fixture
def photographed_catalogue():
    """Six red and six blue shirts with photos; their stored vectors cluster by colour."""
    rng = np.random.default_rng(5)
    clusters = {"Red": (RED, np.eye(1, 16, 0)[0] * 10), "Blue": (BLUE, np.eye(1, 16, 1)[0] * 10)}
    products = {}
    for colour_name, (colour, centre) in clusters.items():
        products[colour_name] = []
        for n in range(6):
            product = ProductFactory(name=f"{colour_name} Shirt {n}", base_colour=colour_name)
            product = with_stored_photo(product, colour)
            EmbeddingFactory(product=product, cnn=centre + rng.normal(0, 0.3, 16))
            products[colour_name].append(product)
    rebuild_index()
    return products


def result_cards(page):
    return page.locator("[data-search-results] .product-card")


def test_shopper_searches_with_one_of_the_shops_photos(live_server, page, photographed_catalogue):
    serve_media(page)
    page.goto(live_server.url + "/visual/search/")
    examples = page.locator("a.example")
    expect(examples).to_have_count(12)
    expect(examples.first.locator("img")).to_have_js_property("complete", True)
    assert examples.first.locator("img").evaluate("(image) => image.naturalWidth") > 0

    chosen_id = int(examples.first.get_attribute("href").split("product=")[1])
    examples.first.click()

    expect(page).to_have_url(f"{live_server.url}/visual/search/?product={chosen_id}")
    expect(page.get_by_role("heading", name="Your photo")).to_be_visible()
    chosen = Product.objects.get(pk=chosen_id)
    expect(page.locator(".photo-search__query img")).to_have_attribute("alt", chosen.name)
    expect(result_cards(page)).to_have_count(5)
    same_colour = {p.name for p in photographed_catalogue[chosen.base_colour] if p.pk != chosen_id}
    assert set(result_cards(page).locator(".product-card__name").all_inner_texts()) == same_colour
    expect(result_cards(page).get_by_role("button", name="Add to cart")).to_have_count(5)


def test_a_file_that_is_not_a_photo_gets_a_clear_message(live_server, page, tmp_path):
    ProductFactory()
    not_a_photo = tmp_path / "holiday.jpg"
    not_a_photo.write_text("These are my holiday notes, not a picture.")
    page.goto(live_server.url + "/visual/search/")

    page.get_by_label("Your photo").set_input_files(not_a_photo)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Find similar items").click()

    assert answer.value.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("Search by photo")
    expect(page.locator(".field-error")).to_have_text(
        "This file is not an image we can read. Please use a JPEG, PNG or WebP photo."
    )
    expect(page.get_by_role("heading", name="Your photo")).to_have_count(0)
    # The form is still there to try again.
    expect(page.get_by_label("Your photo")).to_be_visible()


@pytest.mark.slow
def test_shopper_uploads_a_photo_and_gets_five_similar_items(live_server, page, tmp_path):
    # One transaction: the products are embedded together, in one batch, when it commits.
    with transaction.atomic():
        products = [
            ProductFactory(
                name=f"{name} Shirt {n}", base_colour=name, image=ContentFile(image_bytes(rgb), "photo.jpg")
            )
            for name, rgb in (("Red", RED), ("Blue", BLUE), ("Green", GREEN))
            for n in range(3)
        ]
    report = embed_products([p.pk for p in products])
    assert not report.failed
    rebuild_index()
    photo = tmp_path / "my red shirt.png"
    photo.write_bytes(image_bytes((210, 20, 25), size=(300, 400), fmt="PNG"))
    serve_media(page)
    page.goto(live_server.url + "/visual/search/")

    page.get_by_label("Your photo").set_input_files(photo)
    page.get_by_role("button", name="Find similar items").click()

    expect(page.get_by_role("heading", name="Your photo")).to_be_visible()
    preview = page.locator("img.photo-search__query-image")
    assert preview.get_attribute("src").startswith("data:image/jpeg;base64,")
    assert preview.evaluate("(image) => image.naturalWidth") > 0
    cards = result_cards(page)
    expect(cards).to_have_count(5)
    names = cards.locator(".product-card__name").all_inner_texts()
    assert sorted(names[:3]) == ["Red Shirt 0", "Red Shirt 1", "Red Shirt 2"]
    expect(cards.get_by_role("button", name="Add to cart")).to_have_count(5)

    cards.first.get_by_role("button", name="Add to cart").click()
    expect(page.locator(".site-header [data-cart-count]")).to_have_text("1")
    expect(page.locator("[data-messages]")).to_contain_text(f"Added {names[0]} to your cart.")


@pytest.mark.slow
def test_shopper_drags_a_crop_box_to_search_one_of_two_garments(live_server, page, tmp_path):
    with transaction.atomic():
        products = [
            ProductFactory(
                name=f"{name} Shirt {n}", base_colour=name, image=ContentFile(image_bytes(rgb), "photo.jpg")
            )
            for name, rgb in (("Red", RED), ("Blue", BLUE))
            for n in range(3)
        ]
    embed_products([p.pk for p in products])
    rebuild_index()
    photo = tmp_path / "two shirts.jpg"
    photo.write_bytes(two_garments_photo(RED, BLUE))
    serve_media(page)
    page.goto(live_server.url + "/visual/search/")

    page.get_by_label("Your photo").set_input_files(photo)
    area = page.locator("[data-crop-area]")
    expect(area).to_be_visible()
    box = area.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.05)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.5, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.98, box["y"] + box["height"] * 0.95, steps=5)
    page.mouse.up()
    expect(page.locator("[data-crop-box]")).to_be_visible()
    assert 0.5 < float(page.locator('input[name="crop_x"]').input_value()) < 0.6
    page.get_by_role("button", name="Find similar items").click()

    names = result_cards(page).locator(".product-card__name").all_inner_texts()
    assert sorted(names[:3]) == ["Blue Shirt 0", "Blue Shirt 1", "Blue Shirt 2"]
