"""The import service: upserts, idempotency, prices, images and the recorded run."""

import hashlib
import io
from decimal import Decimal

import pytest
from django.db import IntegrityError
from django.db.models.query import QuerySet
from PIL import Image

from catalog.importing import CatalogueFileError, import_catalogue
from catalog.models import ImportRun, Product
from catalog.signals import products_imported
from tests.catalog_files import STYLES_HEADER, stored_files, styles_line, write_catalogue
from tests.factories import UserFactory
from tests.images import image_bytes

pytestmark = pytest.mark.django_db


def test_first_import_creates_products_with_default_prices_and_images(tmp_path, media_root, settings):
    settings.CATALOG_DEFAULT_PRICE = Decimal("11.11")
    settings.CATALOG_DEFAULT_STOCK = 7
    folder = write_catalogue(
        tmp_path / "cat",
        [
            styles_line(1, "Blue Jeans", article_type="Jeans"),
            styles_line(2, "Odd Thing", article_type="Gadgets"),
        ],
        images=[1, 2],
    )

    report = import_catalogue(folder)

    assert (report.created, report.updated, report.unchanged, report.rejected, report.without_image) == (
        2,
        0,
        0,
        0,
        0,
    )
    jeans, gadget = Product.objects.order_by("id")
    assert (jeans.name, jeans.article_type, jeans.price, jeans.stock) == (
        "Blue Jeans",
        "Jeans",
        Decimal("49.99"),
        7,
    )
    assert gadget.price == Decimal("11.11")
    assert jeans.is_active and not jeans.is_demo
    assert jeans.image.name == "products/1.jpg"
    assert jeans.image_checksum == hashlib.sha256((folder / "images" / "1.jpg").read_bytes()).hexdigest()
    assert stored_files(media_root) == ["1.jpg", "2.jpg"]


def test_import_is_recorded_as_an_import_run(tmp_path, media_root):
    admin = UserFactory(is_staff=True)
    folder = write_catalogue(tmp_path / "cat", [styles_line(1), styles_line("x")], images=[1])

    report = import_catalogue(folder, user=admin)

    run = ImportRun.objects.get()
    assert report.run == run
    assert (run.source, run.user, run.created, run.rejected, run.without_image) == (
        str(folder),
        admin,
        1,
        1,
        0,
    )
    assert run.finished_at is not None
    assert run.rejected_rows == [
        {"line": 3, "id": "x", "reason": "id 'x' is not a whole number", "outcome": "rejected"}
    ]


def test_reimporting_the_same_files_changes_nothing(tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", [styles_line(1), styles_line(2)], images=[1, 2])
    import_catalogue(folder)
    before = {p.id: (p.updated_at, p.image.name, p.image_checksum) for p in Product.objects.all()}

    report = import_catalogue(folder)

    assert (report.created, report.updated, report.unchanged) == (0, 0, 2)
    assert {p.id: (p.updated_at, p.image.name, p.image_checksum) for p in Product.objects.all()} == before
    assert stored_files(media_root) == ["1.jpg", "2.jpg"]
    assert ImportRun.objects.count() == 2


def test_changed_rows_and_images_are_updated_in_place(tmp_path, media_root):
    folder = write_catalogue(
        tmp_path / "cat", [styles_line(1), styles_line(2), styles_line(3)], images=[1, 2, 3]
    )
    import_catalogue(folder)
    new_picture = image_bytes(colour=(10, 200, 10))
    write_catalogue(
        folder, [styles_line(1, "Renamed Tee"), styles_line(2), styles_line(3)], images={3: new_picture}
    )

    report = import_catalogue(folder)

    assert (report.created, report.updated, report.unchanged) == (0, 2, 1)
    assert Product.objects.get(id=1).name == "Renamed Tee"
    changed = Product.objects.get(id=3)
    assert changed.image.name == "products/3.jpg"
    assert changed.image_checksum == hashlib.sha256(new_picture).hexdigest()
    assert (media_root / "products" / "3.jpg").read_bytes() == new_picture
    assert stored_files(media_root) == ["1.jpg", "2.jpg", "3.jpg"]


def test_stale_file_from_an_earlier_run_is_replaced_without_a_suffix(tmp_path, media_root):
    (media_root / "products").mkdir(parents=True)
    (media_root / "products" / "1.jpg").write_bytes(b"left over")
    folder = write_catalogue(tmp_path / "cat", [styles_line(1)], images=[1])

    import_catalogue(folder)

    assert stored_files(media_root) == ["1.jpg"]
    assert (media_root / "products" / "1.jpg").read_bytes() == (folder / "images" / "1.jpg").read_bytes()


def test_deleted_image_file_is_stored_again(tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", [styles_line(1)], images=[1])
    import_catalogue(folder)
    (media_root / "products" / "1.jpg").unlink()

    report = import_catalogue(folder)

    assert report.updated == 1
    assert stored_files(media_root) == ["1.jpg"]


def test_reimport_without_price_column_keeps_the_shops_price_and_stock(tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", [styles_line(1)], images=[1])
    import_catalogue(folder)
    Product.objects.filter(id=1).update(price=Decimal("5.00"), stock=0)

    report = import_catalogue(folder)

    assert report.unchanged == 1
    product = Product.objects.get(id=1)
    assert (product.price, product.stock) == (Decimal("5.00"), 0)


def test_price_and_stock_columns_set_price_and_stock(tmp_path, media_root):
    header = STYLES_HEADER + ",price,stock"
    folder = write_catalogue(tmp_path / "cat", [styles_line(1) + ",12.50,3"], images=[1], header=header)
    import_catalogue(folder)
    write_catalogue(folder, [styles_line(1) + ",14.00,"], header=header)

    report = import_catalogue(folder)

    assert report.updated == 1
    product = Product.objects.get(id=1)
    assert (product.price, product.stock) == (Decimal("14.00"), 3)


def test_rejected_rows_are_reported_and_never_written(tmp_path, media_root):
    lines = [styles_line(1), styles_line(-2), styles_line(3, year="soon"), styles_line(1, "Dup")]
    folder = write_catalogue(tmp_path / "cat", lines, images=[1, 2, 3])

    report = import_catalogue(folder)

    assert list(Product.objects.values_list("id", flat=True)) == [1]
    assert [(row["line"], row["id"]) for row in report.rejected_rows] == [(3, "-2"), (4, "3"), (5, "1")]
    assert report.rows == 4
    assert stored_files(media_root) == ["1.jpg"]


def test_missing_image_is_counted_and_the_row_imported(tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", [styles_line(1), styles_line(2)], images=[1])

    report = import_catalogue(folder)

    assert (report.created, report.without_image, report.image_problems) == (2, 1, [])
    assert not Product.objects.get(id=2).image


def test_csv_only_reimport_keeps_the_stored_images(tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", [styles_line(1)], images=[1])
    import_catalogue(folder)
    (folder / "images" / "1.jpg").unlink()

    report = import_catalogue(folder)

    assert (report.unchanged, report.without_image) == (1, 0)
    assert Product.objects.get(id=1).image.name == "products/1.jpg"


def test_broken_image_imports_the_row_without_image_and_reports_it(tmp_path, media_root):
    truncated = image_bytes(size=(300, 300))[:400]
    folder = write_catalogue(
        tmp_path / "cat", [styles_line(1), styles_line(2)], images={1: b"not an image at all", 2: truncated}
    )

    report = import_catalogue(folder)

    assert (report.created, report.rejected, report.without_image) == (2, 0, 2)
    assert [(p["line"], p["id"], p["outcome"]) for p in report.image_problems] == [
        (2, "1", "imported without image"),
        (3, "2", "imported without image"),
    ]
    assert all(p["reason"].startswith("broken image") for p in report.image_problems)
    assert not Product.objects.filter(image__gt="").exists()
    assert stored_files(media_root) == []
    assert [entry["outcome"] for entry in ImportRun.objects.get().rejected_rows] == [
        "imported without image"
    ] * 2


def test_broken_new_image_keeps_the_previous_one(tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", [styles_line(1)], images=[1])
    import_catalogue(folder)
    good = Product.objects.get(id=1).image_checksum
    write_catalogue(folder, [styles_line(1)], images={1: b"garbage"})

    report = import_catalogue(folder)

    assert report.image_problems[0]["outcome"] == "imported, previous image kept"
    assert report.without_image == 0
    assert Product.objects.get(id=1).image_checksum == good
    assert stored_files(media_root) == ["1.jpg"]


def test_image_over_the_pixel_limit_is_not_stored(tmp_path, media_root, settings):
    settings.IMAGE_MAX_PIXELS = 100
    folder = write_catalogue(tmp_path / "cat", [styles_line(1)], images=[1])

    report = import_catalogue(folder)

    assert "image too large (60x80 pixels" in report.image_problems[0]["reason"]
    assert stored_files(media_root) == []


def test_png_named_jpg_is_stored_as_a_real_jpeg_and_stays_unchanged(tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", [styles_line(1)], images={1: image_bytes(fmt="PNG")})
    import_catalogue(folder)
    with Image.open(media_root / "products" / "1.jpg") as stored:
        assert stored.format == "JPEG"

    assert import_catalogue(folder).unchanged == 1


def test_demo_flag_marks_products_and_a_real_import_clears_it(tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", [styles_line(1)], images=[1])
    import_catalogue(folder, is_demo=True)
    assert Product.objects.get(id=1).is_demo

    report = import_catalogue(folder)

    assert report.updated == 1
    assert not Product.objects.get(id=1).is_demo


def test_new_products_and_changed_images_are_announced_after_commit(
    tmp_path, media_root, django_capture_on_commit_callbacks, monkeypatch
):
    announced = []
    # Recorded instead of sent: the real listeners embed images with the CNN.
    monkeypatch.setattr(
        products_imported, "send", lambda sender, product_ids: announced.append(sorted(product_ids))
    )
    folder = write_catalogue(
        tmp_path / "cat", [styles_line(1), styles_line(2), styles_line(3)], images=[1, 2]
    )

    with django_capture_on_commit_callbacks() as first_run:
        import_catalogue(folder)
    assert announced == []
    for callback in first_run:
        callback()
    write_catalogue(
        folder, [styles_line(1), styles_line(2), styles_line(3)], images={2: image_bytes((0, 0, 0))}
    )
    with django_capture_on_commit_callbacks(execute=True):
        import_catalogue(folder)

    assert announced == [[1, 2, 3], [2]]


def test_rows_are_written_in_batches_with_one_query_for_existing_products(
    tmp_path, media_root, django_assert_max_num_queries
):
    folder = write_catalogue(tmp_path / "cat", [styles_line(i) for i in range(1, 51)])
    import_catalogue(folder)
    write_catalogue(folder, [styles_line(i, "Renamed") for i in range(1, 51)])

    # Run record (2) + per batch of 10: select existing, savepoint, update, release (4 x 5).
    with django_assert_max_num_queries(25):
        report = import_catalogue(folder, batch_size=10)

    assert report.updated == 50


def test_refused_batch_is_retried_row_by_row(tmp_path, media_root, monkeypatch):
    original_bulk_create = QuerySet.bulk_create

    def refuse_bulk(queryset, *args, **kwargs):
        if queryset.model is Product:
            raise IntegrityError("batch refused")
        return original_bulk_create(queryset, *args, **kwargs)

    original_save = Product.save

    def refuse_product_2(product, *args, **kwargs):
        if product.id == 2:
            raise IntegrityError("row refused")
        return original_save(product, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "bulk_create", refuse_bulk)
    monkeypatch.setattr(Product, "save", refuse_product_2)
    folder = write_catalogue(
        tmp_path / "cat", [styles_line(1), styles_line(2), styles_line(3)], images=[1, 2, 3]
    )

    report = import_catalogue(folder)

    assert sorted(Product.objects.values_list("id", flat=True)) == [1, 3]
    assert report.created == 2
    assert report.rejected_rows == [
        {"line": 3, "id": "2", "reason": "could not be saved (row refused)", "outcome": "rejected"}
    ]


def test_missing_folder_or_styles_file_is_a_clear_error(tmp_path, media_root):
    with pytest.raises(CatalogueFileError, match="does not exist"):
        import_catalogue(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogueFileError, match="holds no styles.csv"):
        import_catalogue(tmp_path / "empty")
    assert not ImportRun.objects.exists()


def test_styles_file_path_finds_images_beside_it(tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", [styles_line(1)], images=[1])

    report = import_catalogue(folder / "styles.csv")

    assert (report.created, report.without_image) == (1, 0)


def test_stored_image_is_readable(tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", [styles_line(1)], images=[1])
    import_catalogue(folder)

    with Product.objects.get(id=1).image.open("rb") as stored:
        assert Image.open(io.BytesIO(stored.read())).size == (60, 80)


def test_interrupted_import_keeps_committed_batches_and_records_no_finish(tmp_path, media_root, monkeypatch):
    folder = write_catalogue(tmp_path / "cat", [styles_line(i) for i in range(1, 5)], images=[1, 2, 3, 4])
    storage = Product._meta.get_field("image").storage
    original_save = storage.save

    def disk_full_after_two(name, content, **kwargs):
        if len(stored_files(media_root)) >= 2:
            raise OSError(28, "No space left on device")
        return original_save(name, content, **kwargs)

    monkeypatch.setattr(storage, "save", disk_full_after_two)

    with pytest.raises(OSError):
        import_catalogue(folder, batch_size=2)

    assert sorted(Product.objects.values_list("id", flat=True)) == [1, 2]
    run = ImportRun.objects.get()
    assert (run.created, run.finished_at) == (2, None)
