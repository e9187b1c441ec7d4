"""Search by photo (/visual/search/): uploads of real images, catalogue photos, bad input."""

import base64
import io
import re

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from recommender.embedding.head import HeadConfig, TrainingSet, head_inputs, train_head
from recommender.models import Embedding, ModelVersion
from recommender.refresh import embed_products, rebuild_index
from recommender.vector_store import stored_features
from recommender.versions import activate_version
from tests.factories import EmbeddingFactory, ProductFactory
from tests.images import BLUE, GREEN, RED, YELLOW, garment_photo, two_garments_photo

pytestmark = pytest.mark.django_db

SEARCH_URL = "/visual/search/"


def upload(data, name="photo.jpg", content_type="image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def result_ids(response):
    """Ids of the products in the results grid, in order."""
    html = response.content.decode()
    assert "data-search-results" in html, "the page shows no results grid"
    grid = html.split("data-search-results", 1)[1].split("</section>", 1)[0]
    return [int(pk) for pk in re.findall(r'name="product_id" value="(\d+)"', grid)]


def add_to_cart_forms(response):
    html = response.content.decode()
    grid = html.split("data-search-results", 1)[1].split("</section>", 1)[0]
    return grid.count('class="add-to-cart-form"')


def preview_image(response):
    """The "Your photo" preview, decoded from its data: URL."""
    match = re.search(r'src="data:image/jpeg;base64,([^"]+)"', response.content.decode())
    assert match, "no inline preview of the uploaded photo"
    return Image.open(io.BytesIO(base64.b64decode(match.group(1)))).convert("RGB")


def stored_media(media_root):
    return sorted(str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file())


@pytest.fixture
def embedded_catalogue(media_root):
    """16 products with real photos (4 colours x gender/category), embedded and indexed."""
    products = []
    for colour_name, colour in {"Red": RED, "Blue": BLUE, "Green": GREEN, "Yellow": YELLOW}.items():
        for gender in ("Women", "Men"):
            for category in ("Apparel", "Footwear"):
                product = ProductFactory(
                    base_colour=colour_name,
                    gender=gender,
                    master_category=category,
                    image=ContentFile(garment_photo(colour), name="photo.jpg"),
                )
                products.append(product)
    report = embed_products([p.pk for p in products])
    assert report.embedded == len(products)
    rebuild_index()
    return products


def test_the_page_shows_the_form_and_example_photos(client, media_root):
    with_photo = [ProductFactory(image=ContentFile(garment_photo(RED), name="x.jpg")) for _ in range(3)]
    ProductFactory()  # no photo: not offered as an example

    response = client.get(SEARCH_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert 'name="photo"' in html
    assert "csrfmiddlewaretoken" in html
    examples = re.findall(r'href="/visual/search/\?product=(\d+)"', html)
    assert sorted(map(int, examples)) == sorted(p.pk for p in with_photo)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fmt, content_type, colour, colour_name",
    [
        ("JPEG", "image/jpeg", RED, "Red"),
        ("PNG", "image/png", BLUE, "Blue"),
        ("WEBP", "image/webp", GREEN, "Green"),
    ],
)
def test_uploaded_photo_finds_five_products_with_add_to_cart(
    client, embedded_catalogue, media_root, fmt, content_type, colour, colour_name
):
    files_before = stored_media(media_root)

    response = client.post(
        SEARCH_URL, {"photo": upload(garment_photo(colour, fmt), f"mine.{fmt.lower()}", content_type)}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "Your photo" in html
    ids = result_ids(response)
    assert len(ids) == 5
    assert add_to_cart_forms(response) == 5
    by_id = {p.pk: p for p in embedded_catalogue}
    # Same shape everywhere: colour decides, so the same-coloured products come first.
    assert {by_id[pk].base_colour for pk in ids[:4]} == {colour_name}
    preview = np.asarray(preview_image(response), dtype=np.int16)
    assert np.abs(preview[112, 112] - np.array(colour)).max() < 40
    assert stored_media(media_root) == files_before, "the upload must not be stored"


@pytest.mark.slow
def test_adding_a_result_without_javascript_comes_back_to_the_results(client, embedded_catalogue):
    searched = client.post(SEARCH_URL, {"photo": upload(garment_photo((30, 60, 200)))})
    html = searched.content.decode().replace("&amp;", "&")
    back_to = re.search(r'name="next" value="([^"]+)"', html.split("data-search-results", 1)[1]).group(1)

    added = client.post("/cart/add/", {"product_id": result_ids(searched)[0], "quantity": 1, "next": back_to})
    assert added.status_code == 302
    again = client.get(added["Location"])

    assert result_ids(again) == result_ids(searched)


@pytest.mark.slow
def test_filters_restrict_photo_results(client, embedded_catalogue):
    response = client.post(
        SEARCH_URL, {"photo": upload(garment_photo(RED)), "gender": "Women", "masterCategory": "Footwear"}
    )

    assert response.status_code == 200
    ids = result_ids(response)
    expected = {p.pk for p in embedded_catalogue if p.gender == "Women" and p.master_category == "Footwear"}
    assert set(ids) == expected  # 4 products match both filters
    assert ids[0] == next(p.pk for p in embedded_catalogue if p.pk in expected and p.base_colour == "Red")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_greyscale_and_cmyk_jpegs_are_searched(client, embedded_catalogue, mode):
    response = client.post(SEARCH_URL, {"photo": upload(garment_photo(BLUE, mode=mode))})

    assert response.status_code == 200
    assert len(result_ids(response)) == 5
    preview_image(response)


@pytest.mark.slow
def test_exif_rotated_photo_is_turned_upright(client, embedded_catalogue):
    # Stored 120 wide x 240 high; EXIF orientation 6 says "rotate 90 degrees": upright it
    # is landscape, so the preview has white bands above and below, not at the sides.
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (120, 240), RED).save(buffer, "JPEG", exif=exif)
    data = buffer.getvalue()

    response = client.post(SEARCH_URL, {"photo": upload(data)})

    assert response.status_code == 200
    assert len(result_ids(response)) == 5
    preview = np.asarray(preview_image(response), dtype=np.int16)
    assert preview[5, 112].min() > 230  # top band: white
    assert np.abs(preview[112, 5] - np.array(RED)).max() < 40  # left edge: the red photo


def test_text_file_named_like_a_photo_is_refused_clearly(client, media_root, no_cnn):
    ProductFactory()
    files_before = stored_media(media_root)

    response = client.post(SEARCH_URL, {"photo": upload(b"just some text, not a photo\n" * 20, "photo.jpg")})

    assert response.status_code == 400
    assert "This file is not an image we can read" in response.content.decode()
    assert "data-search-results" not in response.content.decode()
    assert stored_media(media_root) == files_before


def test_damaged_jpeg_is_refused_clearly(client, no_cnn):
    data = garment_photo(RED)[:200]

    response = client.post(SEARCH_URL, {"photo": upload(data)})

    assert response.status_code == 400
    assert "damaged or incomplete" in response.content.decode()


def test_empty_post_asks_for_a_photo(client):
    response = client.post(SEARCH_URL, {})

    assert response.status_code == 400
    assert "Choose a photo to search with." in response.content.decode()


def test_photo_with_too_many_pixels_is_refused(client, no_cnn):
    # 50 megapixels in a few kilobytes: a one-colour 1-bit PNG.
    buffer = io.BytesIO()
    Image.new("1", (10_000, 5_000), 1).save(buffer, "PNG")
    assert len(buffer.getvalue()) < 200_000

    response = client.post(SEARCH_URL, {"photo": upload(buffer.getvalue(), "big.png", "image/png")})

    assert response.status_code == 400
    assert "This image is too large (10000x5000 pixels)" in response.content.decode()


def test_pixel_limit_follows_the_setting(client, settings, no_cnn):
    settings.IMAGE_MAX_PIXELS = 10_000

    response = client.post(SEARCH_URL, {"photo": upload(garment_photo(RED, size=(120, 160)))})

    assert response.status_code == 400
    assert "This image is too large (120x160 pixels). Please use a photo of at most 0.01 megapixels." in (
        response.content.decode()
    )


def test_file_over_the_upload_limit_is_refused(client, settings, no_cnn):
    settings.PHOTO_UPLOAD_MAX_BYTES = 2_000
    data = garment_photo(RED, fmt="PNG", size=(400, 400)) + b"\0" * 3_000

    response = client.post(SEARCH_URL, {"photo": upload(data, "photo.png", "image/png")})

    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r"This photo is too large: the limit is 2\.0\sKB\.", html)


@pytest.fixture
def stored_vector_catalogue(media_root):
    """12 products with photos whose vectors are stored (two clusters of 6), indexed."""
    rng = np.random.default_rng(3)
    products = []
    for cluster in range(2):
        centre = np.eye(2, 16, dtype=np.float32)[cluster] * 10
        for _ in range(6):
            product = ProductFactory(
                article_type=f"type{cluster}", image=ContentFile(garment_photo(RED), name="x.jpg")
            )
            EmbeddingFactory(product=product, cnn=centre + rng.normal(0, 0.5, 16))
            products.append(product)
    rebuild_index()
    return products


def test_catalogue_photo_search_uses_stored_vectors_without_the_cnn(client, stored_vector_catalogue, no_cnn):
    query = stored_vector_catalogue[0]

    response = client.get(SEARCH_URL, {"product": query.pk})

    assert response.status_code == 200
    ids = result_ids(response)
    assert len(ids) == 5
    assert query.pk not in ids
    assert set(ids) == {p.pk for p in stored_vector_catalogue[1:6]}
    assert add_to_cart_forms(response) == 5
    assert query.image_url in response.content.decode()


def test_catalogue_photo_search_of_unknown_or_inactive_product_is_404(client, stored_vector_catalogue):
    hidden = stored_vector_catalogue[0]
    hidden.is_active = False
    hidden.save()

    assert client.get(SEARCH_URL, {"product": 999_999_999}).status_code == 404
    assert client.get(SEARCH_URL, {"product": hidden.pk}).status_code == 404


def test_catalogue_photo_search_of_a_product_without_photo_answers(client, stored_vector_catalogue, no_cnn):
    bare = ProductFactory()

    response = client.get(SEARCH_URL, {"product": bare.pk})

    assert response.status_code == 200
    assert "No matching items are in stock right now." in response.content.decode()


def test_catalogue_photo_search_with_a_bad_product_number_says_so(client):
    response = client.get(SEARCH_URL, {"product": "abc"})

    assert response.status_code == 400
    assert "Enter a whole number." in response.content.decode()


def test_unknown_filter_value_is_refused_with_a_message(client, stored_vector_catalogue):
    response = client.get(SEARCH_URL, {"product": stored_vector_catalogue[0].pk, "gender": "Martians"})

    assert response.status_code == 400
    assert "Select a valid choice." in response.content.decode()


def test_catalogue_photo_search_filters_results(client, stored_vector_catalogue, no_cnn):
    women = stored_vector_catalogue[3:5]
    for product in women:
        product.gender = "Women"
        product.save()

    response = client.get(SEARCH_URL, {"product": stored_vector_catalogue[0].pk, "gender": "Women"})

    assert response.status_code == 200
    assert set(result_ids(response)) == {p.pk for p in women}


def test_embedding_rows_are_untouched_by_searches(client, stored_vector_catalogue):
    before = list(Embedding.objects.order_by("pk").values_list("pk", "updated_at"))

    client.get(SEARCH_URL, {"product": stored_vector_catalogue[0].pk})

    assert list(Embedding.objects.order_by("pk").values_list("pk", "updated_at")) == before


def test_photo_search_needs_the_csrf_token(no_cnn):
    browser = Client(enforce_csrf_checks=True)

    response = browser.post(SEARCH_URL, {"photo": upload(garment_photo(RED))})

    assert response.status_code == 403


def test_catalogue_photo_search_runs_a_fixed_number_of_queries(
    client, stored_vector_catalogue, django_assert_max_num_queries
):
    for product in ProductFactory.create_batch(6, article_type="type0"):
        EmbeddingFactory(product=product, cnn=np.eye(2, 16, dtype=np.float32)[0] * 10)  # newer than the build
    client.get(SEARCH_URL, {"product": stored_vector_catalogue[0].pk})  # index loaded

    with django_assert_max_num_queries(6):
        response = client.get(SEARCH_URL, {"product": stored_vector_catalogue[0].pk})

    assert len(result_ids(response)) == 5


# Crop box and "Looks like" chips

RIGHT_HALF = {"crop_x": "0.5", "crop_y": "0", "crop_width": "0.5", "crop_height": "1"}


@pytest.mark.slow
def test_a_crop_box_searches_only_the_garment_inside_it(client, embedded_catalogue):
    photo = two_garments_photo(RED, BLUE)
    colours = {p.pk: p.base_colour for p in embedded_catalogue}

    right = client.post(SEARCH_URL, {"photo": upload(photo), **RIGHT_HALF})
    left = client.post(SEARCH_URL, {"photo": upload(photo), **RIGHT_HALF, "crop_x": "0"})

    assert [colours[pk] for pk in result_ids(right)[:4]] == ["Blue"] * 4
    assert [colours[pk] for pk in result_ids(left)[:4]] == ["Red"] * 4


@pytest.mark.parametrize(
    "box, message",
    [
        ({"crop_x": "0.8", "crop_width": "0.5"}, "inside the photo"),
        ({"crop_width": "0.01"}, "at least 5%"),
        ({"crop_x": "-0.1"}, "inside the photo"),
        ({"crop_y": "nan"}, "inside the photo"),
    ],
)
def test_a_bad_crop_box_gets_a_clear_message(client, db, box, message):
    data = {"photo": upload(garment_photo(RED)), **RIGHT_HALF, **box}

    response = client.post(SEARCH_URL, data)

    assert response.status_code == 400
    assert message in response.content.decode()


@pytest.fixture
def colour_version(embedded_catalogue, settings, tmp_path):
    """An active trained version whose head learnt the catalogue's colours."""
    settings.MODEL_VERSIONS_DIR = tmp_path / "versions"
    ids, cnn, colour = stored_features()
    colours = {p.pk: p.base_colour for p in embedded_catalogue}
    names = sorted(set(colours.values()))
    numbers = np.array([names.index(colours[int(pk)]) for pk in ids])
    config = HeadConfig(epochs=30, hidden=64, dim=16, task_weights={"article_type": 1.0, "base_colour": 1.0})
    data = TrainingSet(
        inputs=head_inputs(cnn, colour),
        labels={"base_colour": numbers},
        classes={"article_type": ["Tshirts"], "base_colour": names},
        type_targets=np.ones((len(ids), 1), dtype=np.float32),
        example_weights=np.ones(len(ids), dtype=np.float32),
    )
    weights, _ = train_head(data, config)
    version = ModelVersion.objects.create(
        backbone="efficientnet_lite0", status=ModelVersion.Status.READY, weights_file="version-test.npz"
    )
    settings.MODEL_VERSIONS_DIR.mkdir()
    weights.save(settings.MODEL_VERSIONS_DIR / version.weights_file)
    activate_version(version)
    rebuild_index()
    return version


@pytest.mark.slow
def test_looks_like_chips_refine_the_results_without_a_second_upload(
    client, colour_version, embedded_catalogue
):
    colours = {p.pk: p.base_colour for p in embedded_catalogue}
    response = client.post(SEARCH_URL, {"photo": upload(garment_photo(BLUE))})
    html = response.content.decode()

    assert "Looks like:" in html
    chip = re.search(r'class="chip" href="([^"]+)"[^>]*>Blue<', html.replace("&amp;", "&"))
    assert chip, "a Blue chip is shown"
    assert "refine=1" in chip.group(1) and "baseColour=Blue" in chip.group(1)

    refined = client.get(SEARCH_URL + chip.group(1))
    assert refined.status_code == 200
    assert {colours[pk] for pk in result_ids(refined)} == {"Blue"}
    assert 'class="chip chip--on"' in refined.content.decode()
    # Another shopper (another session) has no photo to refine.
    expired = Client().get(SEARCH_URL + chip.group(1))
    assert expired.status_code == 400
    assert "expired" in expired.content.decode()


@pytest.mark.slow
def test_the_api_reports_what_the_model_sees_and_takes_a_crop(colour_version, embedded_catalogue):
    colours = {p.pk: p.base_colour for p in embedded_catalogue}
    api = APIClient()
    response = api.post(
        "/api/search/image",
        {"image": upload(two_garments_photo(RED, BLUE)), **RIGHT_HALF},
        format="multipart",
    )

    assert response.status_code == 200
    assert [colours[p["id"]] for p in response.json()["results"][:3]] == ["Blue"] * 3
    seen = {row["param"]: row["value"] for row in response.json()["looks_like"]}
    assert seen["baseColour"] == "Blue"
    bad = api.post(
        "/api/search/image", {"image": upload(garment_photo(RED)), "crop_x": "2"}, format="multipart"
    )
    assert bad.status_code == 400
    assert "crop" in bad.json()["errors"] or "crop" in bad.json()["detail"].lower()
