"""Product photos and their thumbnails in production: served by the app from the media
folder with cache headers, by the production server too, and from an S3-compatible store
when configured."""

import io
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from catalog.models import Product
from catalog.thumbnails import make_thumbnails, photo_sources
from tests.factories import ProductFactory
from tests.images import garment_photo, image_bytes
from tests.servers import gunicorn

PROJECT = Path(__file__).resolve().parents[2]
YEAR = 365 * 24 * 3600
CHECKSUM = "0123456789abcdef" * 4


@pytest.fixture
def photo(db, media_root):
    return ProductFactory(image=ContentFile(image_bytes(), name="any.jpg"))


def test_a_page_links_a_versioned_photo_that_may_be_cached_for_a_year(photo, client):
    page = client.get(photo.get_absolute_url()).content.decode()
    assert photo.image_url in page and f"?v={photo.image_checksum[:12]}" in photo.image_url

    response = client.get(photo.image_url)

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == photo.image.read()
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == f"public, max-age={YEAR}, immutable"
    again = client.get(photo.image_url, headers={"If-Modified-Since": response["Last-Modified"]})
    assert again.status_code == 304


def test_a_changed_photo_gets_a_new_address(photo):
    before = photo.image_url
    photo.image = ContentFile(image_bytes(colour=(10, 200, 10)), name="any.jpg")
    photo.save()
    assert Product.objects.get(pk=photo.pk).image_url != before


def test_a_thumbnail_is_served_as_webp_and_may_be_cached_for_a_year(photo, client):
    make_thumbnails(photo)
    photo.thumbnails_checksum = photo.image_checksum  # recorded as the task does
    url = photo_sources(photo, "card").src
    assert url == f"/media/thumbnails/{photo.image_checksum}/240.webp"

    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert response["Cache-Control"] == f"public, max-age={YEAR}, immutable"
    body = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(body)
    assert Image.open(io.BytesIO(body)).format == "WEBP"
    again = client.get(url, headers={"If-Modified-Since": response["Last-Modified"]})
    assert again.status_code == 304


def test_an_unversioned_address_is_revalidated_hourly(photo, client):
    response = client.get(photo.image.url)
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=3600"


@pytest.mark.parametrize(
    "path",
    [
        "/media/uploads/notes.txt",  # a folder the shop does not serve
        "/media/products/../uploads/notes.txt",
        "/media/products/%2e%2e/uploads/notes.txt",
        "/media/products/.hidden.jpg",
        "/media/products/missing.jpg",
        "/media/products/",
        f"/media/thumbnails/{CHECKSUM}/240.webp",  # not made
        f"/media/thumbnails/{CHECKSUM}/notes.txt",
        f"/media/thumbnails/{CHECKSUM}/../../uploads/notes.txt",
        "/media/thumbnails/../uploads/notes.txt",
        "/media/thumbnails/uploads/240.webp",
        f"/media/thumbnails/{CHECKSUM}/",
        f"/media/thumbnails/{CHECKSUM}/extra/240.webp",
    ],
)
def test_only_the_shops_own_photo_folders_are_served(path, photo, media_root, client):
    (media_root / "uploads").mkdir()
    (media_root / "uploads" / "notes.txt").write_text("private")
    (media_root / "uploads" / "240.webp").write_text("private")
    (media_root / "products" / ".hidden.jpg").write_bytes(image_bytes())
    (media_root / "thumbnails" / CHECKSUM / "extra").mkdir(parents=True)
    (media_root / "thumbnails" / CHECKSUM / "notes.txt").write_text("private")
    (media_root / "thumbnails" / CHECKSUM / "extra" / "240.webp").write_text("private")
    assert client.get(path).status_code == 404


def test_photos_are_read_only(photo, client):
    assert client.post(photo.image.url).status_code == 405


def production_env(tmp_path, **extra):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "REDIS_", "DATABASE_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="a-long-random-production-secret-for-this-test-only-0123456789",
        DJANGO_SECURE_SSL_REDIRECT="0",  # no TLS proxy in front of this test's server
        DATA_DIR=str(tmp_path / "var"),
        MEDIA_ROOT=str(tmp_path / "media"),
        **extra,
    )
    return env


def test_the_production_server_shows_product_photos(tmp_path):
    env = production_env(tmp_path)

    def manage(*args):
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=PROJECT, env=env, check=True, capture_output=True
        )

    manage("migrate", "-v0")
    manage("make_demo_catalog", "--count", "3", "--out", str(tmp_path / "demo"), "--import")
    with gunicorn(env, tmp_path / "gunicorn.log") as base:
        # No worker runs here: until make_thumbnails, cards show the full photos.
        page = _get(f"{base}/").read().decode()
        src = re.search(r'class="product-card__image" src="([^"]+)"', page).group(1)
        with _get(base + src.replace("&amp;", "&")) as response:
            body = response.read()
            assert response.headers["Content-Type"] == "image/jpeg"
            assert "immutable" in response.headers["Cache-Control"]
        assert body[:3] == b"\xff\xd8\xff" and len(body) > 500

        manage("make_thumbnails")
        page = _get(f"{base}/").read().decode()
        src = re.search(r'class="product-card__image" src="(/media/thumbnails/[0-9a-f]{64}/240\.webp)"', page)
        with _get(base + src.group(1)) as response:
            assert response.headers["Content-Type"] == "image/webp"
            assert response.headers["Cache-Control"] == f"public, max-age={YEAR}, immutable"
            assert response.read()[8:12] == b"WEBP"


def _get(url, wait=0):
    deadline = time.monotonic() + wait
    while True:
        try:
            return urllib.request.urlopen(url, timeout=10)
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture
def object_store(unused_port, tmp_path, monkeypatch, settings):
    """A real S3-compatible server (moto's) on loopback with one bucket, and the shop's
    default storage pointed at it as MEDIA_BUCKET would."""
    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists():
        pytest.skip("moto_server is not installed (requirements-dev.txt)")
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    server = subprocess.Popen(
        [str(binary), "-p", str(unused_port)], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{unused_port}"
    try:
        _get(f"{endpoint}/", wait=20)
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="shop-media")
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "config.storage.MediaStorage",  # as MEDIA_BUCKET configures it
                "OPTIONS": {
                    "bucket_name": "shop-media",
                    "endpoint_url": endpoint,
                    "querystring_auth": False,
                    "default_acl": "public-read",
                    "object_parameters": {"CacheControl": "public, max-age=3600"},
                },
            },
        }
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_with_an_object_store_photos_are_stored_and_linked_there(object_store, db, client):
    data = image_bytes(colour=(20, 90, 160))
    product = ProductFactory(image=ContentFile(data, name="upload.jpg"))

    assert product.image_url.startswith(f"{object_store}/shop-media/products/{product.pk}.jpg")
    assert product.image_url in client.get(product.get_absolute_url()).content.decode()
    with _get(product.image_url) as response:
        assert response.read() == data
    with Product.objects.get(pk=product.pk).image.open("rb") as stored:  # as the embedding reads it
        assert stored.read() == data


def test_with_an_object_store_thumbnails_are_stored_and_linked_there(object_store, db, client):
    product = ProductFactory(
        image=ContentFile(garment_photo((20, 90, 160), size=(600, 800)), name="upload.jpg")
    )
    make_thumbnails(product)
    Product.objects.record_thumbnails([product.image_checksum])

    page = client.get(product.get_absolute_url()).content.decode()

    folder = f"{object_store}/shop-media/thumbnails/{product.image_checksum}"
    assert f'src="{folder}/480.webp" srcset="{folder}/480.webp 1x, {folder}/960.webp 2x"' in page
    with _get(f"{folder}/960.webp") as response:
        assert response.headers["Content-Type"] == "image/webp"
        assert response.headers["Cache-Control"] == f"public, max-age={YEAR}, immutable"
        assert Image.open(io.BytesIO(response.read())).size == (600, 800)
    with _get(product.image_url) as response:
        assert response.headers["Cache-Control"] == "public, max-age=3600"


def stored_photos(media_root):
    return sorted(path.name for path in (media_root / "products").iterdir())


def test_a_replaced_photo_leaves_no_old_file_behind(photo, media_root, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        photo.image = ContentFile(image_bytes(colour=(10, 200, 10)), name="new.jpg")
        photo.save()
    assert stored_photos(media_root) == [Path(photo.image.name).name]
    assert photo.image.read() == image_bytes(colour=(10, 200, 10))


def test_a_rolled_back_replacement_keeps_the_photo(photo, media_root):
    from django.db import transaction

    before = photo.image.name
    with pytest.raises(RuntimeError), transaction.atomic():
        photo.image = ContentFile(image_bytes(colour=(10, 200, 10)), name="new.jpg")
        photo.save()
        raise RuntimeError("refused")
    assert Product.objects.get(pk=photo.pk).image.name == before
    assert Path(before).name in stored_photos(media_root)
