"""Rate limits key on the real client address: a new X-Forwarded-For per request does not
dodge them unless a trusted proxy sets it; photo search (page and API), log-in and
sign-up are limited."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from config.throttling import ClientAddressThrottle, PhotoSearchThrottle

pytestmark = pytest.mark.django_db
TIGHT = {"photo_search": "2/minute", "login": "2/minute", "signup": "2/minute"}


@pytest.fixture(autouse=True)
def tight_rates(monkeypatch):
    for throttle in (ClientAddressThrottle, PhotoSearchThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", TIGHT)


def not_an_image():
    return SimpleUploadedFile("x.jpg", b"not an image", content_type="image/jpeg")


def api_search(forwarded_for, remote="10.9.8.7"):
    return (
        APIClient()
        .post(
            "/api/search/image",
            {"image": not_an_image()},
            format="multipart",
            HTTP_X_FORWARDED_FOR=forwarded_for,
            REMOTE_ADDR=remote,
        )
        .status_code
    )


def test_a_new_forwarded_for_header_per_request_does_not_dodge_the_limit():
    codes = [api_search(f"203.0.113.{i}") for i in range(3)]

    assert codes == [400, 400, 429]  # 400: past the throttle, refused as not an image


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    first = [api_search("203.0.113.1", remote="127.0.0.1") for _ in range(3)]
    other = api_search("203.0.113.2", remote="127.0.0.1")

    assert first == [400, 400, 429]
    assert other == 400


def test_the_photo_search_page_is_limited_too(client):
    codes = [
        client.post(reverse("recommender:photo_search"), {"photo": not_an_image()}).status_code
        for _ in range(3)
    ]

    assert codes == [400, 400, 429]


@pytest.mark.parametrize(
    "url, data",
    [
        ("login", {"username": "nobody", "password": "wrong"}),
        ("signup", {"username": "", "password1": "x", "password2": "y"}),
    ],
)
def test_log_in_and_sign_up_are_limited(client, url, data):
    codes = [client.post(reverse(url), data).status_code for _ in range(3)]

    assert codes[:2] == [200, 200]  # the form again, with its errors
    assert codes[2] == 429
    assert "Too many attempts" in client.post(reverse(url), data).content.decode()
