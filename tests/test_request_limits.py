"""Oversized bodies are refused before they are read (413), on every upload path, and an
upload streamed without a Content-Length stops at the limit."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import StopUpload
from django.test import RequestFactory
from rest_framework.test import APIClient

from config.request_limits import LimitedUploadHandler

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.PHOTO_UPLOAD_MAX_BYTES = 100_000


def big_file():
    return SimpleUploadedFile("big.jpg", b"\xff" * 300_000, content_type="image/jpeg")


def test_an_oversized_api_upload_gets_a_json_413(no_cnn):
    response = APIClient().post("/api/search/image", {"image": big_file()}, format="multipart")

    assert response.status_code == 413
    assert response.json()["detail"].startswith("The request is larger than the 97.7")


def test_an_oversized_page_upload_gets_a_413_page(client, no_cnn):
    response = client.post("/visual/search/", {"photo": big_file()})

    assert response.status_code == 413
    assert "too large" in response.content.decode()


def test_a_product_photo_upload_through_the_api_is_limited_too(staff_user, product):
    api = APIClient()
    api.force_login(staff_user)
    response = api.patch(f"/api/products/{product.pk}/", {"image": big_file()}, format="multipart")

    assert response.status_code == 413


def test_a_streamed_upload_stops_at_the_limit():
    request = RequestFactory().post("/api/search/image")
    handler = LimitedUploadHandler(request)
    handler.handle_raw_input(io.BytesIO(), request.META, None, b"x")

    handler.receive_data_chunk(b"x" * 100_000, 0)  # within 100 kB + the multipart room
    with pytest.raises(StopUpload):
        handler.receive_data_chunk(b"x" * 100_000, 100_000)
