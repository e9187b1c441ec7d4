"""Errors under /api/ are JSON with a ``detail``, whatever produced them: a wrong method, a
rate limit, a body too large or unreadable, an exception no view handled (unknown addresses:
test_schema.py)."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import path
from rest_framework.views import APIView

from config import urls as site_urls
from config.throttling import PhotoSearchThrottle

pytestmark = pytest.mark.django_db


class BrokenAPI(APIView):
    def get(self, request):
        raise RuntimeError("a bug")


def broken_page(request):
    raise RuntimeError("a bug")


# The URLconf of the 500 tests: the site's routes and handler500, and two views that raise.
urlpatterns = [path("api/broken/", BrokenAPI.as_view()), path("broken/", broken_page), *site_urls.urlpatterns]
handler500 = site_urls.handler500


@pytest.fixture
def browser():
    """Like a browser: an unhandled exception gives the 500 answer, not a test error."""
    return Client(raise_request_exception=False)


def json_detail(response):
    assert response["Content-Type"] == "application/json"
    detail = json.loads(response.content)["detail"]
    assert isinstance(detail, str) and detail
    return detail


def test_wrong_method(browser):
    response = browser.put("/api/cart/", {}, content_type="application/json")

    assert response.status_code == 405
    assert json_detail(response) == 'Method "PUT" not allowed.'


def test_throttled(browser, monkeypatch):
    monkeypatch.setattr(PhotoSearchThrottle, "THROTTLE_RATES", {"photo_search": "1/minute"})

    def search():
        photo = SimpleUploadedFile("x.jpg", b"not an image", content_type="image/jpeg")
        return browser.post("/api/search/image", {"image": photo})

    assert search().status_code == 400  # refused as not an image, but counted
    response = search()

    assert response.status_code == 429
    assert "throttled" in json_detail(response)


def test_content_length_over_the_limit(browser):
    response = browser.post(
        "/api/cart/items/", "{}", content_type="application/json", CONTENT_LENGTH=str(10**9)
    )

    assert response.status_code == 413
    assert "larger than" in json_detail(response)


def test_data_over_django_memory_limit(browser, settings):
    # Under the upload limit, but more than Django reads into memory outside files.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"product_id": 1, "quantity": 1, "note": "x" * 2000})

    response = browser.post("/api/cart/items/", body, content_type="application/json")

    assert response.status_code == 413
    assert json_detail(response) == "The request data outside files is larger than the 1000\xa0bytes allowed."


def test_too_many_form_fields(browser, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    body = "&".join(f"field{i}=1" for i in range(20))

    response = browser.post("/api/cart/items/", body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert json_detail(response) == "The request could not be read."


@pytest.mark.urls(__name__)
def test_unhandled_exception_under_api_answers_json(browser):
    response = browser.get("/api/broken/")

    assert response.status_code == 500
    assert json_detail(response) == "Server error: the request could not be completed."
    assert b"a bug" not in response.content


@pytest.mark.urls(__name__)
def test_unhandled_exception_elsewhere_shows_the_error_page(browser):
    response = browser.get("/broken/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert b"Something went wrong" in response.content
