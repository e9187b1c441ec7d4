"""The visual-search API: similar products, search by photo, recommendations, schema."""

from datetime import timedelta

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Product
from recommender.refresh import embed_products, rebuild_index
from tests.factories import EmbeddingFactory, OrderItemFactory, ProductFactory
from tests.images import BLUE, RED, garment_photo

pytestmark = pytest.mark.django_db

SEARCH_IMAGE_URL = "/api/search/image"
RECOMMENDATIONS_URL = "/api/recommendations/"


def similar_url(product_id):
    return f"/api/products/{product_id}/similar/"


def ids_of(response):
    return [item["id"] for item in response.json()["results"]]


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def indexed(clustered_catalogue):
    rebuild_index()
    return clustered_catalogue


# Similar products


def test_similar_returns_k_neighbours_of_the_same_cluster(api, indexed, no_cnn):
    product = indexed[0]

    response = api.get(similar_url(product.pk), {"k": 5})

    assert response.status_code == 200
    ids = ids_of(response)
    assert len(ids) == 5
    assert product.pk not in ids
    assert set(ids) <= {p.pk for p in indexed[:10]}
    first = response.json()["results"][0]
    assert {"id", "name", "price", "in_stock", "masterCategory", "url"} <= set(first)


def test_similar_defaults_to_five_and_accepts_up_to_fifty(api, indexed):
    product = indexed[0]

    assert len(ids_of(api.get(similar_url(product.pk)))) == 5
    assert len(ids_of(api.get(similar_url(product.pk), {"k": 50}))) == 29  # everything else there is


@pytest.mark.parametrize("k", ["0", "51", "-3", "many"])
def test_similar_refuses_k_out_of_bounds_with_json(api, indexed, k):
    response = api.get(similar_url(indexed[0].pk), {"k": k})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["detail"].startswith("k: ")
    assert "k" in body["errors"]


def test_similar_filters_by_gender_and_category(api, indexed):
    product = indexed[0]
    women = indexed[12:15]  # another cluster: far from the product
    for other in women:
        other.gender = "Women"
        other.master_category = "Footwear"
        other.save()

    response = api.get(similar_url(product.pk), {"gender": "Women", "masterCategory": "Footwear"})

    assert response.status_code == 200
    assert sorted(ids_of(response)) == sorted(p.pk for p in women)
    nothing = api.get(similar_url(product.pk), {"gender": "Women", "masterCategory": "Apparel"})
    assert ids_of(nothing) == []


def test_similar_of_unknown_or_inactive_product_is_a_json_404(api, indexed):
    hidden = indexed[0]
    hidden.is_active = False
    hidden.save()

    for product_id in (999_999_999, hidden.pk):
        response = api.get(similar_url(product_id))
        assert response.status_code == 404
        assert "detail" in response.json()


def test_similar_of_an_out_of_stock_product_still_answers(api, indexed):
    sold_out = indexed[0]
    sold_out.stock = 0
    sold_out.save()

    response = api.get(similar_url(sold_out.pk))

    assert response.status_code == 200
    assert len(ids_of(response)) == 5


# Search by photo


def photo(data, name="photo.jpg", content_type="image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def photo_catalogue(media_root):
    """8 products with real photos (red and blue, men and women), embedded and indexed."""
    products = []
    for colour_name, colour in {"Red": RED, "Blue": BLUE}.items():
        for gender in ("Men", "Women", "Men", "Women"):
            image = ContentFile(garment_photo(colour), name="p.jpg")
            products.append(ProductFactory(base_colour=colour_name, gender=gender, image=image))
    embed_products([p.pk for p in products])
    rebuild_index()
    return products


@pytest.mark.slow
def test_search_by_image_returns_k_products(api, photo_catalogue):
    response = api.post(SEARCH_IMAGE_URL, {"image": photo(garment_photo(BLUE)), "k": 3}, format="multipart")

    assert response.status_code == 200
    ids = ids_of(response)
    assert len(ids) == 3
    by_id = {p.pk: p for p in photo_catalogue}
    assert {by_id[pk].base_colour for pk in ids} == {"Blue"}


@pytest.mark.slow
def test_search_by_image_applies_filters(api, photo_catalogue):
    response = api.post(
        SEARCH_IMAGE_URL,
        {"image": photo(garment_photo(RED, fmt="PNG"), "p.png", "image/png"), "gender": "Women", "k": 10},
        format="multipart",
    )

    assert response.status_code == 200
    ids = ids_of(response)
    assert sorted(ids) == sorted(p.pk for p in photo_catalogue if p.gender == "Women")
    by_id = {p.pk: p for p in photo_catalogue}
    assert by_id[ids[0]].base_colour == "Red"


def test_search_by_image_refuses_a_text_file_with_a_message(api, no_cnn):
    response = api.post(
        SEARCH_IMAGE_URL, {"image": photo(b"hello, I am text\n" * 50, "photo.jpg")}, format="multipart"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == (
        "image: This file is not an image we can read. Please use a JPEG, PNG or WebP photo."
    )
    assert body["errors"]["image"]


def test_search_by_image_without_image_is_refused(api):
    response = api.post(SEARCH_IMAGE_URL, {"k": 5}, format="multipart")

    assert response.status_code == 400
    assert "image" in response.json()["errors"]


def test_search_by_image_refuses_files_over_the_limit(api, settings, no_cnn):
    settings.PHOTO_UPLOAD_MAX_BYTES = 1_000
    data = garment_photo(RED, fmt="PNG", size=(300, 300)) + b"\0" * 2_000

    response = api.post(SEARCH_IMAGE_URL, {"image": photo(data, "p.png", "image/png")}, format="multipart")

    assert response.status_code == 400
    assert "larger than 1000\xa0bytes" in response.json()["detail"]


def test_search_by_image_refuses_too_many_pixels(api, settings, no_cnn):
    settings.IMAGE_MAX_PIXELS = 5_000

    data = garment_photo(RED, size=(100, 100))

    response = api.post(SEARCH_IMAGE_URL, {"image": photo(data)}, format="multipart")

    assert response.status_code == 400
    assert "too large (100x100 pixels)" in response.json()["detail"]


@pytest.mark.parametrize("k", ["0", "51"])
def test_search_by_image_refuses_k_out_of_bounds(api, k, no_cnn):
    response = api.post(SEARCH_IMAGE_URL, {"image": photo(garment_photo(RED)), "k": k}, format="multipart")

    assert response.status_code == 400
    assert "k" in response.json()["errors"]


def test_search_by_image_refuses_json_bodies(api):
    response = api.post(SEARCH_IMAGE_URL, {"image": "aGVsbG8="}, format="json")

    assert response.status_code == 415


def test_search_by_image_needs_no_csrf_token(no_cnn):
    """Searching changes nothing and reads no account, so scripts and apps may call it
    without first fetching a CSRF token."""
    client = APIClient(enforce_csrf_checks=True)

    response = client.post(SEARCH_IMAGE_URL, {"image": photo(b"not an image")}, format="multipart")

    assert response.status_code == 400  # past authentication, refused as not an image
    assert response.json()["errors"]["image"]


def test_search_by_image_is_rate_limited(no_cnn, monkeypatch):
    from config.throttling import PhotoSearchThrottle

    monkeypatch.setattr(PhotoSearchThrottle, "THROTTLE_RATES", {"photo_search": "2/minute"})
    codes = [
        APIClient().post(SEARCH_IMAGE_URL, {"image": photo(b"x")}, format="multipart").status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 429]


# Recommendations


def test_new_visitor_gets_best_sellers_then_newest(api):
    best, second, never_sold, newest = ProductFactory.create_batch(4)
    Product.objects.filter(pk=newest.pk).update(created_at=timezone.now() + timedelta(days=1))
    OrderItemFactory(product=second, quantity=2)
    OrderItemFactory(product=best, quantity=3)
    OrderItemFactory(product=best, quantity=1)

    response = api.get(RECOMMENDATIONS_URL, {"k": 3})

    assert response.status_code == 200
    assert ids_of(response) == [best.pk, second.pk, newest.pk]


def test_recommendations_follow_viewed_products_and_skip_the_cart(api, indexed):
    viewed = indexed[10:12]  # cluster "type1"
    in_cart = indexed[12]
    for product in viewed:
        assert api.get(product.get_absolute_url()).status_code == 200
    assert api.post("/cart/add/", {"product_id": in_cart.pk, "quantity": 1}).status_code == 302

    response = api.get(RECOMMENDATIONS_URL)

    assert response.status_code == 200
    ids = ids_of(response)
    assert len(ids) == 5
    assert in_cart.pk not in ids
    assert set(ids) <= {p.pk for p in indexed[10:20]}


def test_recommendations_refuse_k_out_of_bounds(api):
    assert api.get(RECOMMENDATIONS_URL, {"k": 0}).status_code == 400
    assert api.get(RECOMMENDATIONS_URL, {"k": 51}).status_code == 400


def test_recommendations_of_a_visitor_do_not_create_a_cart(api):
    from shop.models import Cart

    ProductFactory.create_batch(2)

    api.get(RECOMMENDATIONS_URL)

    assert not Cart.objects.exists()


def test_a_new_product_found_by_its_stored_vector_before_any_rebuild(api, indexed, no_cnn):
    newcomer = ProductFactory(article_type="type2")
    EmbeddingFactory(product=newcomer, cnn=np.eye(3, 16, dtype=np.float32)[2] * 10)

    response = api.get(similar_url(indexed[20].pk))

    assert newcomer.pk in ids_of(response)


# Schema


def test_schema_lists_the_visual_search_paths(api):
    response = api.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/products/{id}/similar/" in paths
    assert "post" in paths["/api/search/image"]
    assert "multipart/form-data" in paths["/api/search/image"]["post"]["requestBody"]["content"]
    assert "/api/recommendations/" in paths
