"""Products API: list with the storefront's filters, detail, and staff-only writes."""

import hashlib
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from PIL import Image

from catalog.models import Product
from tests.factories import ProductFactory
from tests.images import image_bytes

pytestmark = pytest.mark.django_db


def ids(response):
    return [item["id"] for item in response.json()["results"]]


def upload(data, name="photo.jpg", content_type="image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


class TestList:
    def test_lists_active_products_with_styles_csv_fields(self, api_client):
        product = ProductFactory(name="Blue Slim Jeans", price=Decimal("39.50"), stock=3, with_image=True)
        ProductFactory(is_active=False)

        response = api_client.get("/api/products/")

        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 1
        item = body["results"][0]
        assert item == {
            "id": product.id,
            "name": "Blue Slim Jeans",
            "gender": "Men",
            "masterCategory": "Apparel",
            "subCategory": "Topwear",
            "articleType": "Tshirts",
            "baseColour": "Blue",
            "season": "Summer",
            "year": 2012,
            "usage": "Casual",
            "price": "39.50",
            "stock": 3,
            "in_stock": True,
            "image": f"http://testserver/media/{product.image.name}",
            "url": f"http://testserver/products/{product.id}/",
        }

    def test_product_without_photo_has_null_image(self, api_client):
        ProductFactory(stock=0)

        item = api_client.get("/api/products/").json()["results"][0]

        assert item["image"] is None
        assert item["in_stock"] is False

    def test_filters_by_facets_like_the_storefront(self, api_client):
        women_red = ProductFactory(gender="Women", base_colour="Red", article_type="Tops")
        ProductFactory(gender="Women", base_colour="Blue", article_type="Tops")
        ProductFactory(gender="Men", base_colour="Red", article_type="Tops")

        response = api_client.get(
            "/api/products/", {"gender": "Women", "baseColour": "Red", "articleType": "Tops"}
        )

        assert ids(response) == [women_red.id]

    def test_search_matches_every_word_of_the_name(self, api_client):
        jeans = ProductFactory(name="Blue Slim Jeans")
        ProductFactory(name="Blue Shirt")
        ProductFactory(name="Black Jeans")

        assert ids(api_client.get("/api/products/", {"q": "jeans blue"})) == [jeans.id]

    def test_pages_hold_24_products_by_default(self, api_client):
        ProductFactory.create_batch(30)

        first = api_client.get("/api/products/").json()
        second = api_client.get(first["next"]).json()

        assert len(first["results"]) == 24
        assert len(second["results"]) == 6
        assert second["next"] is None

    def test_page_size_can_be_chosen_up_to_100(self, api_client):
        ProductFactory.create_batch(101)

        assert len(api_client.get("/api/products/", {"page_size": 5}).json()["results"]) == 5
        assert len(api_client.get("/api/products/", {"page_size": 500}).json()["results"]) == 100

    def test_page_past_the_end_is_a_json_404(self, api_client):
        ProductFactory()

        response = api_client.get("/api/products/", {"page": 9})

        assert response.status_code == 404
        assert response.json()["detail"]

    def test_query_count_does_not_grow_with_products(self, api_client, django_assert_max_num_queries):
        ProductFactory.create_batch(24, with_image=True)

        # One COUNT for the paginator, one SELECT for the page.
        with django_assert_max_num_queries(2):
            response = api_client.get("/api/products/")

        assert len(response.json()["results"]) == 24


class TestDetail:
    def test_shows_one_product(self, api_client, product):
        response = api_client.get(f"/api/products/{product.id}/")

        assert response.status_code == 200
        assert response.json()["id"] == product.id
        assert response.json()["name"] == product.name

    def test_inactive_product_is_a_json_404(self, api_client):
        hidden = ProductFactory(is_active=False)

        response = api_client.get(f"/api/products/{hidden.id}/")

        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/json"
        assert response.json() == {"detail": "No Product matches the given query."}

    def test_unknown_product_is_a_json_404(self, api_client):
        response = api_client.get("/api/products/999999/")

        assert response.status_code == 404
        assert "detail" in response.json()


class TestStaffWrites:
    def test_staff_creates_a_product_with_a_real_photo(self, staff_api):
        photo = image_bytes(size=(120, 160))

        response = staff_api.post(
            "/api/products/",
            {
                "id": 5001,
                "name": "Red Kurta",
                "gender": "Women",
                "articleType": "Kurtas",
                "price": "24.00",
                "stock": 7,
                "image": upload(photo),
            },
            format="multipart",
        )

        assert response.status_code == 201, response.json()
        product = Product.objects.get(pk=5001)
        assert product.article_type == "Kurtas"
        assert product.price == Decimal("24.00")
        with product.image.open("rb") as stored:
            stored_bytes = stored.read()
        assert stored_bytes == photo
        assert product.image_checksum == hashlib.sha256(photo).hexdigest()
        assert response.json()["image"] == f"http://testserver/media/{product.image.name}"

    def test_png_photo_is_stored_as_jpeg(self, staff_api):
        response = staff_api.post(
            "/api/products/",
            {
                "id": 5002,
                "name": "Green Cap",
                "price": "9.99",
                "image": upload(image_bytes(fmt="PNG"), "cap.png"),
            },
            format="multipart",
        )

        assert response.status_code == 201, response.json()
        product = Product.objects.get(pk=5002)
        with product.image.open("rb") as stored:
            assert Image.open(io.BytesIO(stored.read())).format == "JPEG"

    def test_staff_creates_a_product_from_json_without_photo(self, staff_api):
        response = staff_api.post(
            "/api/products/", {"id": 5003, "name": "Socks", "price": "3.00"}, format="json"
        )

        assert response.status_code == 201
        assert response.json()["image"] is None
        assert Product.objects.get(pk=5003).stock == 0

    def test_non_image_upload_is_refused_with_a_clear_400(self, staff_api):
        response = staff_api.post(
            "/api/products/",
            {
                "id": 5004,
                "name": "Fake",
                "price": "1.00",
                "image": upload(b"<?php echo 'hi'; ?>", "evil.jpg"),
            },
            format="multipart",
        )

        assert response.status_code == 400
        assert response.json()["detail"] == (
            "image: The file cannot be used as a product photo: "
            "broken image (not an image file Pillow can read)."
        )
        assert not Product.objects.filter(pk=5004).exists()

    def test_truncated_jpeg_is_refused(self, staff_api):
        broken = image_bytes(size=(300, 300))[:400]

        response = staff_api.post(
            "/api/products/",
            {"id": 5005, "name": "Broken", "price": "1.00", "image": upload(broken)},
            format="multipart",
        )

        assert response.status_code == 400
        assert "broken image" in response.json()["detail"]
        assert not Product.objects.filter(pk=5005).exists()

    def test_other_image_formats_are_refused(self, staff_api):
        response = staff_api.post(
            "/api/products/",
            {"id": 5006, "name": "Gif", "price": "1.00", "image": upload(image_bytes(fmt="GIF"), "a.gif")},
            format="multipart",
        )

        assert response.status_code == 400
        assert "unsupported image type (GIF)" in response.json()["detail"]

    def test_photo_over_the_size_limit_is_refused(self, staff_api, settings):
        photo = image_bytes(size=(200, 200))
        settings.PHOTO_UPLOAD_MAX_BYTES = len(photo) - 1

        response = staff_api.post(
            "/api/products/",
            {"id": 5007, "name": "Big", "price": "1.00", "image": upload(photo)},
            format="multipart",
        )

        assert response.status_code == 400
        assert "larger than" in response.json()["detail"]
        assert not Product.objects.filter(pk=5007).exists()

    def test_photo_over_the_pixel_limit_is_refused(self, staff_api, settings):
        settings.IMAGE_MAX_PIXELS = 100 * 100

        response = staff_api.post(
            "/api/products/",
            {"id": 5008, "name": "Wide", "price": "1.00", "image": upload(image_bytes(size=(101, 100)))},
            format="multipart",
        )

        assert response.status_code == 400
        assert "101x100 pixels" in response.json()["detail"]

    def test_duplicate_id_is_refused(self, staff_api, product):
        response = staff_api.post(
            "/api/products/", {"id": product.id, "name": "Copy", "price": "1.00"}, format="json"
        )

        assert response.status_code == 400
        assert response.json()["errors"]["id"]

    def test_missing_fields_are_named_in_the_message(self, staff_api):
        response = staff_api.post("/api/products/", {"id": 5009}, format="json")

        assert response.status_code == 400
        assert "name: This field is required." in response.json()["detail"]
        assert "price: This field is required." in response.json()["detail"]

    def test_staff_changes_price_and_stock(self, staff_api, product):
        response = staff_api.patch(
            f"/api/products/{product.id}/", {"price": "12.50", "stock": 0}, format="json"
        )

        assert response.status_code == 200
        product.refresh_from_db()
        assert (product.price, product.stock) == (Decimal("12.50"), 0)
        assert (response.json()["stock"], response.json()["in_stock"]) == (0, False)

    def test_id_cannot_be_changed(self, staff_api, product):
        response = staff_api.patch(
            f"/api/products/{product.id}/", {"id": 1, "name": "Renamed"}, format="json"
        )

        assert response.status_code == 200
        assert response.json()["id"] == product.id
        assert not Product.objects.filter(pk=1).exists()

    def test_new_photo_replaces_the_old_file(self, staff_api, django_capture_on_commit_callbacks):
        product = ProductFactory(with_image=True)
        old_name = product.image.name
        storage = product.image.storage
        new_photo = image_bytes(colour=(10, 200, 10))

        with django_capture_on_commit_callbacks(execute=True):
            response = staff_api.patch(
                f"/api/products/{product.id}/", {"image": upload(new_photo)}, format="multipart"
            )

        assert response.status_code == 200, response.json()
        product.refresh_from_db()
        assert product.image_checksum == hashlib.sha256(new_photo).hexdigest()
        with product.image.open("rb") as stored:
            assert stored.read() == new_photo
        assert product.image.name != old_name
        assert not storage.exists(old_name)

    def test_shopper_cannot_create_products(self, user_api):
        response = user_api.post(
            "/api/products/", {"id": 5010, "name": "Mine", "price": "1.00"}, format="json"
        )

        assert response.status_code == 403
        assert response.json() == {"detail": "Only staff can change the catalogue."}
        assert not Product.objects.filter(pk=5010).exists()

    def test_visitor_cannot_change_products(self, api_client, product):
        response = api_client.patch(f"/api/products/{product.id}/", {"price": "0.01"}, format="json")

        assert response.status_code == 403
        assert "detail" in response.json()
        product.refresh_from_db()
        assert product.price == Decimal("19.99")

    def test_put_is_not_offered(self, staff_api, product):
        response = staff_api.put(
            f"/api/products/{product.id}/", {"name": "X", "price": "1.00"}, format="json"
        )

        assert response.status_code == 405
        assert "detail" in response.json()


def test_the_api_applies_only_the_callers_change_to_the_stock(staff_api):
    product = ProductFactory(price=Decimal("10.00"), stock=10)
    url = f"/api/products/{product.pk}/"
    Product.objects.filter(pk=product.pk).update(stock=F("stock") - 3)  # a sale meanwhile

    price_only = staff_api.patch(url, {"price": "11.00"}, format="json")
    received = staff_api.patch(url, {"stock": 15, "stock_loaded": 10}, format="json")

    assert price_only.status_code == received.status_code == 200
    assert received.json()["stock"] == 12
    product.refresh_from_db()
    assert (product.price, product.stock) == (Decimal("11.00"), 12)
    assert "stock_loaded" not in received.json()


def test_staff_without_the_model_permission_cannot_change_products(db, product):
    from django.contrib.auth.models import Permission
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_product"))
    api = APIClient()
    api.force_login(clerk)

    response = api.patch(f"/api/products/{product.id}/", {"price": "0.01"}, format="json")
    created = api.post("/api/products/", {"id": 5020, "name": "Mine", "price": "1.00"}, format="json")

    assert response.status_code == created.status_code == 403
    product.refresh_from_db()
    assert product.price != Decimal("0.01")
    assert not Product.objects.filter(pk=5020).exists()
    clerk.user_permissions.add(Permission.objects.get(codename="change_product"))
    clerk = type(clerk).objects.get(pk=clerk.pk)  # permissions are cached per user object
    api.force_login(clerk)
    assert api.patch(f"/api/products/{product.id}/", {"price": "9.99"}, format="json").status_code == 200
