"""Hostile and broken uploads (tests/bad_inputs.py) through every path that takes a photo:
the search-by-photo page, the search API and the admin's product image.

Never a 5xx: a refused file gets a 4xx (a form error in the admin) that says what is
wrong, and nothing is written: no file under the test's folders, no database row.
"""

import html
import io
import re

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from catalog.forms import ProductImageField
from catalog.importing.images import jpeg_without_trailer
from catalog.models import image_checksum
from recommender import annoy_index
from recommender.embedding import COLOUR_DIM
from recommender.refresh import rebuild_index
from tests.bad_inputs import (
    REFUSED,
    REFUSED_UPLOADS,
    SEARCHED_UPLOADS,
    SIZE_LIMIT,
    STORED,
    UPLOADS,
    files_under,
    row_counts,
)
from tests.factories import EmbeddingFactory, ProductFactory

# Pillow warns about the corrupt EXIF block it is given on purpose.
pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:Corrupt EXIF data")]

SEARCH_URL = "/visual/search/"
SEARCH_API_URL = "/api/search/image"
CNN_DIM = 1280  # EfficientNet-Lite0's features


def kind(upload):
    return upload.kind


def as_file(upload):
    return SimpleUploadedFile(upload.name, upload.data(), content_type=upload.content_type)


class Watched:
    """Files under the test's folders and rows in every table, before and after."""

    def __init__(self, folders):
        self.folders = folders
        self.files = files_under(*folders)
        self.rows = row_counts()

    def assert_nothing_written(self, allowed_tables=()):
        assert files_under(*self.folders) == self.files
        after = row_counts()
        assert {table: n for table, n in after.items() if table not in allowed_tables} == {
            table: n for table, n in self.rows.items() if table not in allowed_tables
        }


@pytest.fixture
def watched(settings, tmp_path, media_root):
    """Uploads above 1 kB are buffered on disk (in a folder of this test), the photo size
    limit is small, and the folders are watched from here on."""
    settings.PHOTO_UPLOAD_MAX_BYTES = SIZE_LIMIT
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-buffer")
    (tmp_path / "upload-buffer").mkdir()
    media_root.mkdir(parents=True, exist_ok=True)
    return lambda: Watched([tmp_path, settings.TEST_DATA_DIR])


def page_text(response):
    return html.unescape(response.content.decode())


def test_the_corpus_covers_every_kind_once():
    names = [upload.kind for upload in UPLOADS]
    assert len(names) == len(set(names)) >= 30
    assert len(REFUSED_UPLOADS) >= 15 and len(SEARCHED_UPLOADS) >= 10
    assert all(upload.message for upload in REFUSED_UPLOADS)


# Search by photo: refused files (the CNN is never loaded for them)


@pytest.mark.parametrize("upload", REFUSED_UPLOADS, ids=kind)
def test_the_search_page_refuses_it_with_a_message(client, watched, no_cnn, upload):
    before = watched()

    response = client.post(SEARCH_URL, {"photo": as_file(upload)})

    assert response.status_code == 400
    text = page_text(response)
    assert re.search(upload.message, text), text[:2000]
    assert "data-search-results" not in text
    before.assert_nothing_written()


@pytest.mark.parametrize("upload", REFUSED_UPLOADS, ids=kind)
def test_the_search_api_refuses_it_with_a_message(watched, no_cnn, upload):
    before = watched()

    response = APIClient().post(SEARCH_API_URL, {"image": as_file(upload)}, format="multipart")

    assert response.status_code == 400
    body = response.json()
    assert re.search(upload.message, body["detail"]), body
    assert body["errors"]["image"]
    before.assert_nothing_written()


# Search by photo: odd but real photos are searched (the CNN runs)


@pytest.fixture
def searchable_catalogue(db):
    """Six buyable products with stored vectors of the real model's size, indexed."""
    rng = np.random.default_rng(5)
    products = ProductFactory.create_batch(6)
    for product in products:
        EmbeddingFactory(product=product, cnn=rng.random(CNN_DIM), colour=rng.random(COLOUR_DIM))
    rebuild_index()
    annoy_index.current_index()  # loaded as a web process does at start: its copy is made now
    return products


@pytest.mark.slow
@pytest.mark.parametrize("upload", SEARCHED_UPLOADS, ids=kind)
def test_real_photos_are_searched_and_never_stored(client, searchable_catalogue, watched, upload):
    before = watched()

    page = client.post(SEARCH_URL, {"photo": as_file(upload)})
    api = APIClient().post(SEARCH_API_URL, {"image": as_file(upload), "k": 3}, format="multipart")

    assert page.status_code == 200, page_text(page)[:2000]
    assert "data-search-results" in page_text(page)
    assert re.search(r'name="product_id" value="\d+"', page.content.decode())
    assert api.status_code == 200, api.json()
    assert len(api.json()["results"]) == 3
    # The page keeps the photo's features (never the photo) in the shopper's session.
    before.assert_nothing_written(allowed_tables={"sessions.Session"})


# Request shapes that carry no usable file


def test_a_photo_sent_as_a_text_field_asks_for_a_photo(client, watched, no_cnn):
    before = watched()

    page = client.post(SEARCH_URL, {"photo": "not a file"})
    api = APIClient().post(SEARCH_API_URL, {"image": "not a file"}, format="multipart")

    assert page.status_code == 400
    assert "Choose a photo to search with." in page_text(page)
    assert api.status_code == 400
    assert "not a file" in api.json()["detail"]
    before.assert_nothing_written()


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data; boundary=nothing-like-the-body", "multipart/form-data", "image/jpeg"],
    ids=["wrong boundary", "no boundary", "raw image body"],
)
def test_a_malformed_request_body_is_a_400(client, watched, no_cnn, content_type):
    before = watched()
    body = b"--other\r\nContent-Disposition: form-data; name=photo; filename=a.jpg\r\n\r\n\xff\xd8\xff"

    page = client.post(SEARCH_URL, body, content_type=content_type)
    api = APIClient().post(SEARCH_API_URL, body, content_type=content_type)

    assert page.status_code == 400
    assert api.status_code in (400, 415)
    assert api.json()["detail"]
    before.assert_nothing_written()


# The admin's product image: refused files are never stored, kept ones are real JPEGs


def test_the_admin_checks_product_photos_like_the_import(staff_client, product):
    form = staff_client.get(f"/admin/catalog/product/{product.pk}/change/").context["adminform"].form
    assert isinstance(form.fields["image"], ProductImageField)


def change_form_data(client, product):
    """What the product's change page posts back unchanged."""
    form = client.get(f"/admin/catalog/product/{product.pk}/change/").context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or name == "image":
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = value
    return data


@pytest.mark.parametrize("upload", UPLOADS, ids=lambda upload: upload.kind)
def test_the_admin_stores_only_sound_product_photos(staff_client, watched, upload):
    product = ProductFactory()
    data = change_form_data(staff_client, product)
    before = watched()

    response = staff_client.post(
        f"/admin/catalog/product/{product.pk}/change/", {**data, "image": as_file(upload)}
    )

    product.refresh_from_db()
    if upload.admin == REFUSED:
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors.get("image")
        assert errors, "the image field shows an error"
        assert html.escape(errors[0]) in response.content.decode()
        assert not product.image
        before.assert_nothing_written(allowed_tables={"admin.LogEntry"})
        return
    assert upload.admin == STORED
    assert response.status_code == 302
    stored = product.image.read()
    assert image_checksum(stored) == product.image_checksum
    assert jpeg_without_trailer(stored) == stored, "nothing kept after the JPEG's end"
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG"
        image.load()
