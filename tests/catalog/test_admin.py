"""Django admin: the product list, the read-only import runs and the "Import catalogue" page."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.importing import import_catalogue
from catalog.models import ImportRun, Product
from tests.catalog_files import (
    STYLES_HEADER,
    raw_zip_bytes,
    stored_files,
    styles_line,
    write_catalogue,
    zip_bytes,
)
from tests.factories import ProductFactory, UserFactory
from tests.images import image_bytes

pytestmark = pytest.mark.django_db

IMPORT_URL = reverse("admin:catalog_product_import")
CHANGELIST_URL = reverse("admin:catalog_product_changelist")
STYLES = (
    "\n".join([STYLES_HEADER, styles_line(1, "Admin, Upload Tee"), styles_line(2), styles_line("bad")]) + "\n"
)


def upload(name, data):
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def changelist_queries(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST_URL)
    assert response.status_code == 200
    return response, len(queries)


def test_product_list_shows_thumbnails_without_a_query_per_product(staff_client, media_root):
    ProductFactory.create_batch(2, with_image=True)
    _, few = changelist_queries(staff_client)
    ProductFactory.create_batch(20, with_image=True)

    response, many = changelist_queries(staff_client)

    assert many == few
    html = response.content.decode()
    assert html.count('<img src="/media/products/') == 22
    assert 'href="/admin/catalog/product/import/"' in html


def test_product_search_finds_a_product_by_id_or_name(staff_client):
    wanted = ProductFactory(id=4321, name="Quiet Linen Shirt")
    other = ProductFactory(id=1234, name="Loud Cap 4321x")

    by_id = staff_client.get(CHANGELIST_URL, {"q": "4321"})
    by_name = staff_client.get(CHANGELIST_URL, {"q": "linen"})

    assert list(by_id.context["cl"].result_list) == [other, wanted]
    assert list(by_name.context["cl"].result_list) == [wanted]


def test_product_list_filters_by_category(staff_client):
    ProductFactory(article_type="Jeans")
    ProductFactory(article_type="Watches")

    response = staff_client.get(CHANGELIST_URL, {"article_type": "Jeans"})

    assert [p.article_type for p in response.context["cl"].result_list] == ["Jeans"]


def test_price_and_stock_are_editable_in_the_list(staff_client):
    product = ProductFactory(price=Decimal("10.00"), stock=4)
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": str(product.id),
        "form-0-price": "12.50",
        "form-0-stock": "9",
        "form-0-is_active": "on",
        "_save": "Save",
    }

    response = staff_client.post(CHANGELIST_URL, data)

    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.price, product.stock) == (Decimal("12.50"), 9)


def test_anonymous_visitor_is_sent_to_the_login_page(client, media_root):
    get = client.get(IMPORT_URL)
    post = client.post(IMPORT_URL, {"styles_csv": upload("styles.csv", STYLES.encode())})

    for response in (get, post):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert not Product.objects.exists()


def test_shopper_without_staff_status_is_refused(user_client, media_root):
    response = user_client.post(IMPORT_URL, {"styles_csv": upload("styles.csv", STYLES.encode())})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not Product.objects.exists()
    assert not ImportRun.objects.exists()


def test_staff_without_product_permissions_is_refused(client, media_root):
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_product"))
    client.force_login(clerk)

    response = client.post(IMPORT_URL, {"styles_csv": upload("styles.csv", STYLES.encode())})

    assert response.status_code == 403
    assert not Product.objects.exists()


def test_staff_sees_the_upload_form(staff_client):
    response = staff_client.get(IMPORT_URL)

    assert response.status_code == 200
    assert b'enctype="multipart/form-data"' in response.content
    assert b'name="styles_csv"' in response.content and b'name="archive"' in response.content


def test_staff_imports_styles_and_an_image_zip_and_sees_the_report(staff_client, staff_user, media_root):
    archive = zip_bytes({"images/1.jpg": image_bytes(), "images/2.jpg": image_bytes()})

    response = staff_client.post(
        IMPORT_URL,
        {"styles_csv": upload("styles.csv", STYLES.encode()), "archive": upload("pics.zip", archive)},
    )

    assert response.status_code == 200
    report = response.context["report"]
    assert (report.created, report.rejected, report.without_image) == (2, 1, 0)
    html = response.content.decode()
    assert '<td id="report-created">2</td>' in html
    assert '<td id="report-rejected">1</td>' in html
    assert "<td>4</td><td>bad</td><td>id &#x27;bad&#x27; is not a whole number</td>" in html
    assert Product.objects.get(id=1).name == "Admin, Upload Tee"
    assert stored_files(media_root) == ["1.jpg", "2.jpg"]
    run = ImportRun.objects.get()
    assert run.user == staff_user
    assert "pics.zip" in run.source


def test_staff_imports_one_zip_of_the_whole_layout(staff_client, media_root):
    archive = zip_bytes({"shop/styles.csv": STYLES.encode(), "shop/images/1.jpg": image_bytes()})

    response = staff_client.post(IMPORT_URL, {"archive": upload("catalogue.zip", archive)})

    assert response.context["report"].created == 2
    assert stored_files(media_root) == ["1.jpg"]


def test_uploads_are_deleted_after_the_import(staff_client, media_root, tmp_path, settings, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    staff_client.post(IMPORT_URL, {"styles_csv": upload("styles.csv", STYLES.encode())})

    assert Product.objects.count() == 2
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith("catalogue-upload-")] == []


def test_file_error_is_shown_on_the_page_and_nothing_imported(staff_client, media_root):
    response = staff_client.post(
        IMPORT_URL, {"styles_csv": upload("styles.csv", b"gender,season\nMen,Summer\n")}
    )

    assert response.status_code == 200
    assert b"lacks the required column(s) id, productDisplayName" in response.content
    assert not Product.objects.exists()


def test_zip_slip_upload_is_refused(staff_client, media_root):
    archive = zip_bytes({"styles.csv": STYLES.encode(), "../../evil.jpg": image_bytes()})

    response = staff_client.post(IMPORT_URL, {"archive": upload("evil.zip", archive)})

    assert b"was refused" in response.content
    assert not Product.objects.exists()


def test_empty_form_asks_for_a_file(staff_client):
    response = staff_client.post(IMPORT_URL, {})

    assert b"Choose styles.csv, a zip archive, or both." in response.content


def test_upload_over_the_size_limit_is_refused_before_reading_it(staff_client, media_root, settings):
    settings.CATALOG_UPLOAD_MAX_BYTES = 1000
    big = upload("styles.csv", (STYLES + "x" * 100_000).encode())

    response = staff_client.post(IMPORT_URL, {"styles_csv": big})

    assert response.status_code == 413
    assert b"larger than the 1000" in response.content
    assert not Product.objects.exists()


def test_upload_over_the_size_limit_is_refused_by_the_form_too(staff_client, media_root, settings):
    settings.CATALOG_UPLOAD_MAX_BYTES = 200

    response = staff_client.post(IMPORT_URL, {"styles_csv": upload("styles.csv", STYLES.encode() * 2)})

    assert response.status_code == 200
    assert b"The upload is larger than" in response.content
    assert not Product.objects.exists()


def test_import_form_needs_a_csrf_token(staff_user, media_root):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)

    response = client.post(IMPORT_URL, {"styles_csv": upload("styles.csv", STYLES.encode())})

    assert response.status_code == 403
    assert not Product.objects.exists()


def test_import_runs_are_read_only_and_show_their_problems(staff_client, tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", [styles_line(1), styles_line("zz")], images={1: b"broken"})
    run = import_catalogue(folder).run

    listing = staff_client.get(reverse("admin:catalog_importrun_changelist"))
    detail = staff_client.get(reverse("admin:catalog_importrun_change", args=[run.pk]))
    add = staff_client.get(reverse("admin:catalog_importrun_add"))
    delete = staff_client.post(reverse("admin:catalog_importrun_delete", args=[run.pk]), {"post": "yes"})

    assert listing.status_code == 200 and str(folder) in listing.content.decode()
    html = detail.content.decode()
    assert "<td>3</td><td>zz</td>" in html
    assert "imported without image" in html
    assert 'name="_save"' not in html
    assert add.status_code == 403
    assert delete.status_code == 403
    assert ImportRun.objects.filter(pk=run.pk).exists()


def test_product_list_shows_each_products_visual_search_status(staff_client, media_root):
    from recommender.embedding import VECTOR_RECIPE
    from recommender.models import Embedding
    from recommender.vector_store import current_model_name

    indexed, waiting = ProductFactory.create_batch(2, with_image=True)
    ProductFactory(name="No photo")
    Embedding.objects.create(
        product=indexed,
        model_name=current_model_name(),
        recipe=VECTOR_RECIPE,
        checksum=indexed.image_checksum,
        cnn=b"",
        colour=b"",
    )

    rows = {p.pk: p for p in staff_client.get(CHANGELIST_URL).context["cl"].result_list}
    html = staff_client.get(CHANGELIST_URL).content.decode()

    assert rows[indexed.pk].has_vectors and not rows[waiting.pk].has_vectors
    assert html.count(">indexed<") == 1
    assert html.count(">waiting<") == 1
    assert html.count(">no image<") == 1


def test_a_zip_entry_with_an_empty_name_is_refused_with_a_message(staff_client, media_root):
    archive = raw_zip_bytes({"styles.csv": STYLES.encode(), "": image_bytes()})

    response = staff_client.post(IMPORT_URL, {"archive": upload("empty-name.zip", archive)})

    assert response.status_code == 200
    assert b"empty names" in response.content
    assert not Product.objects.exists()
