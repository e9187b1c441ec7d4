"""Broken catalogues (tests/bad_inputs.py) through the import service and the admin's
import page: good rows kept, bad rows reported with their line and reason, a file that
cannot be read refused as a whole, never a partial product, and no file written outside
the media folder. Images are moved into place only once their row is committed.
"""

import html
import io
import os
import re
import stat
import tempfile
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from PIL import Image

from catalog.importing import CatalogueFileError, import_catalogue
from catalog.importing.images import jpeg_without_trailer
from catalog.models import ImportRun, Product, image_checksum
from catalog.signals import products_imported
from recommender import queueing
from tests.bad_inputs import (
    STYLES_FILES,
    end_records_only,
    files_under,
    jpeg_with_zip,
    palette_png_with_transparency,
    png_with_header,
    png_with_html,
    sixteen_bit_png,
    svg_with_script,
    with_damaged_data,
    with_directory_fields,
    with_directory_name,
    zip_archive,
)
from tests.catalog_files import STYLES_HEADER, raw_zip_bytes, stored_files, styles_line, write_catalogue
from tests.images import BLUE, GREEN, RED, YELLOW, garment_photo, image_bytes

pytestmark = pytest.mark.django_db

IMPORT_URL = reverse("admin:catalog_product_import")
STYLES = (STYLES_HEADER + "\n" + styles_line(1) + "\n" + styles_line(2) + "\n").encode()


def kind(case):
    return case.kind


@pytest.fixture
def outside_media(tmp_path, media_root, monkeypatch):
    """Temporary files go to a folder of this test; ``watch()`` starts watching every
    file under the test's folder that is not a stored product image."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))

    def others():
        return {path for path in files_under(tmp_path) if media_root not in path.parents}

    class Watch:
        def __init__(self):
            self.before = others()

        def assert_nothing_written(self):
            assert others() == self.before
            leftovers = [path for path in files_under(media_root) if not re.fullmatch(r"\d+\.jpg", path.name)]
            assert leftovers == [], "only products/<id>.jpg files in the media folder"

    return Watch


def admin_upload(client, **files):
    data = {name: SimpleUploadedFile(f"{name}.bin", content) for name, content in files.items()}
    response = client.post(IMPORT_URL, data)
    assert response.status_code == 200
    return response, html.unescape(response.content.decode())


def product_ids():
    return tuple(Product.objects.order_by("id").values_list("id", flat=True))


def assert_report(report, case):
    assert product_ids() == case.kept
    rejected = {row["line"]: row["reason"] for row in report.rejected_rows}
    expected = case.rejected or {}
    assert sorted(rejected) == sorted(expected)
    for line, reason in expected.items():
        assert reason in rejected[line], (line, rejected[line])
    assert report.rows == len(case.kept) + len(expected)


# styles.csv


@pytest.mark.parametrize("case", STYLES_FILES, ids=kind)
def test_a_broken_styles_file_through_the_service(tmp_path, media_root, outside_media, case):
    folder = tmp_path / "catalogue"
    write_catalogue(folder, [], images=[1, 2, 3])
    (folder / "styles.csv").write_bytes(case.make())
    watch = outside_media()

    if case.refused:
        with pytest.raises(CatalogueFileError, match=re.escape(case.refused)):
            import_catalogue(folder)
        assert not Product.objects.exists()
        assert not ImportRun.objects.exists()
        assert stored_files(media_root) == []
    else:
        assert_report(import_catalogue(folder), case)
        assert stored_files(media_root) == [f"{pk}.jpg" for pk in (1, 2, 3) if pk in case.kept]
    watch.assert_nothing_written()


@pytest.mark.parametrize("case", STYLES_FILES, ids=kind)
def test_a_broken_styles_file_through_the_admin(staff_client, media_root, outside_media, case):
    watch = outside_media()

    response, page = admin_upload(staff_client, styles_csv=case.make())

    if case.refused:
        assert case.refused in page
        assert response.context["report"] is None
        assert not Product.objects.exists()
    else:
        report = response.context["report"]
        assert_report(report, case)
        for line, reason in (case.rejected or {}).items():
            assert re.search(rf"<td>{line}</td><td>[^<]*</td><td>[^<]*{re.escape(reason)}", page)
    watch.assert_nothing_written()


# Archives that would write outside the media folder


def _symlink_archive():
    data = zip_archive({"styles.csv": STYLES, "images/1.jpg": image_bytes(), "images/2.jpg": b"/etc/passwd"})
    return with_directory_fields(data, "images/2.jpg", external_attr=(stat.S_IFLNK | 0o777) << 16)


ESCAPING_ARCHIVES = {
    "../x.jpg": lambda: zip_archive({"styles.csv": STYLES, "../1.jpg": image_bytes()}),
    "images/../../x.jpg": lambda: zip_archive({"styles.csv": STYLES, "images/../../1.jpg": image_bytes()}),
    "absolute path": lambda: zip_archive({"styles.csv": STYLES, "/tmp/1.jpg": image_bytes()}),
    "network path": lambda: zip_archive({"styles.csv": STYLES, "//server/share/1.jpg": image_bytes()}),
    "drive letter": lambda: zip_archive({"styles.csv": STYLES, "C:/images/1.jpg": image_bytes()}),
    "drive-relative path": lambda: zip_archive({"styles.csv": STYLES, "C:1.jpg": image_bytes()}),
    "backslashes": lambda: zip_archive({"styles.csv": STYLES, "..\\..\\1.jpg": image_bytes()}),
    "symlink": _symlink_archive,
    "empty name": lambda: raw_zip_bytes({"styles.csv": STYLES, "": image_bytes()}),
    "a lone slash": lambda: raw_zip_bytes({"styles.csv": STYLES, "/": b""}),
}


@pytest.mark.parametrize("make", ESCAPING_ARCHIVES.values(), ids=ESCAPING_ARCHIVES.keys())
def test_an_archive_that_would_escape_is_refused_whole_by_the_admin(
    staff_client, media_root, outside_media, make
):
    watch = outside_media()

    _, page = admin_upload(staff_client, archive=make())

    assert "was refused" in page and "Nothing was imported." in page
    assert not Product.objects.exists()
    assert not ImportRun.objects.exists()
    assert stored_files(media_root) == []
    watch.assert_nothing_written()


# Zip bombs and damaged archives, at the real limits

MB = 1024 * 1024


def _declared_huge():
    members = {"styles.csv": STYLES, **{f"images/{n}.jpg": image_bytes() for n in range(1, 14)}}
    data = zip_archive(members)
    for n in range(1, 14):  # 13 entries of almost 4 GB each: 52 GB
        data = with_directory_fields(data, f"images/{n}.jpg", size=0xFFFF_FFF0)
    return data


def _utf8_name_that_is_not():
    data = zip_archive({"styles.csv": STYLES, "images/\u00e9.jpg": image_bytes()})
    return with_directory_name(data, "images/\u00e9.jpg", b"images/\xff\xfe.jpg")


def _styles_cut_short():
    data = zip_archive({"images/1.jpg": image_bytes(), "styles.csv": STYLES}, zipfile.ZIP_STORED)
    size = len(STYLES) + 10_000  # runs past the end of the archive
    return with_directory_fields(data, "styles.csv", compressed_size=size, size=size)


def _image_archive(image, **fields):
    data = zip_archive({"styles.csv": STYLES, "images/1.jpg": image, "images/2.jpg": image_bytes()})
    return with_directory_fields(data, "images/1.jpg", **fields) if fields else data


# (archive, what the import says: the whole archive refused, or row 1's image problem)
BROKEN_ARCHIVES = {
    "claims 200,001 entries": (lambda: end_records_only(200_001, 10_000), "refused", "200001 entries"),
    "a 60 MB list of entries": (lambda: end_records_only(10, 60 * MB), "refused", "list of entries takes"),
    "declares 52 GB unpacked": (_declared_huge, "refused", "would unpack to 52.0 GB"),
    "unknown zip version": (
        lambda: with_directory_fields(zip_archive({"styles.csv": STYLES}), "styles.csv", version_needed=190),
        "refused",
        "is not a readable zip archive (zip file version 19.0)",
    ),
    "a name flagged UTF-8 that is not": (_utf8_name_that_is_not, "refused", "is not a readable zip archive"),
    "styles.csv cut short": (_styles_cut_short, "refused", "(its data ends too early)"),
    "no styles.csv": (lambda: zip_archive({"images/1.jpg": image_bytes()}), "refused", "holds no styles.csv"),
    "two catalogues": (
        lambda: zip_archive({"a/styles.csv": STYLES, "b/styles.csv": STYLES}),
        "refused",
        "several styles.csv",
    ),
    "an image inflating past 20 MB": (
        lambda: _image_archive(b"\0" * (21 * MB)),
        "image",
        "image file is larger than the 20.0 MB allowed",
    ),
    "an image understating its size": (
        lambda: _image_archive(b"\0" * (25 * MB), size=100),
        "image",
        "image cannot be read from the archive (Bad CRC-32",
    ),
    "an encrypted image": (
        lambda: _image_archive(image_bytes(), flags=0x1),
        "image",
        "password required",
    ),
    "an unknown compression method": (
        lambda: _image_archive(image_bytes(), method=99),
        "image",
        "compression method is not supported",
    ),
    "scrambled image data": (
        lambda: with_damaged_data(_image_archive(garment_photo(RED)), "images/1.jpg"),
        "image",
        "image cannot be read from the archive",
    ),
    "a zip as an image": (
        lambda: _image_archive(zip_archive({"x.jpg": image_bytes()})),
        "image",
        "broken image (not an image file Pillow can read)",
    ),
}


def _check_broken_archive(outcome, message, run_import):
    if outcome == "refused":
        with pytest.raises(CatalogueFileError, match=re.escape(message)):
            run_import()
        assert not Product.objects.exists()
        return
    report = run_import()
    assert product_ids() == (1, 2)
    [problem] = report.image_problems
    assert (problem["line"], problem["id"], problem["outcome"]) == (2, "1", "imported without image")
    assert message in problem["reason"]
    assert not Product.objects.get(id=1).image
    assert Product.objects.get(id=2).image


@pytest.mark.parametrize("case", BROKEN_ARCHIVES.values(), ids=BROKEN_ARCHIVES.keys())
def test_a_broken_archive_through_the_service(tmp_path, media_root, outside_media, case):
    make, outcome, message = case
    archive = tmp_path / "catalogue.zip"
    archive.write_bytes(make())
    watch = outside_media()

    _check_broken_archive(outcome, message, lambda: import_catalogue(archive))

    assert stored_files(media_root) == ([] if outcome == "refused" else ["2.jpg"])
    watch.assert_nothing_written()


@pytest.mark.parametrize("case", BROKEN_ARCHIVES.values(), ids=BROKEN_ARCHIVES.keys())
def test_a_broken_archive_through_the_admin(staff_client, media_root, outside_media, case):
    make, outcome, message = case
    watch = outside_media()

    def run_import():
        response, page = admin_upload(staff_client, archive=make())
        if response.context["report"] is None:
            raise CatalogueFileError(page)
        assert message in page  # in the image problems table
        return response.context["report"]

    _check_broken_archive(outcome, message, run_import)

    watch.assert_nothing_written()


# An images folder holding other things


def test_an_images_folder_with_non_images(tmp_path, media_root, outside_media):
    folder = tmp_path / "catalogue"
    outside = tmp_path / "private.jpg"
    outside.write_bytes(garment_photo(BLUE))
    images = {
        1: b"just text",
        2: svg_with_script(),
        3: b"",
        4: zip_archive({"x.jpg": image_bytes()}),
        5: image_bytes(fmt="GIF"),
        6: png_with_header(8_000, 6_000),
        10: garment_photo(RED),
    }
    write_catalogue(folder, [styles_line(pk) for pk in range(1, 13)], images=images)
    (folder / "images" / "7.jpg").mkdir()
    (folder / "images" / "8.jpg").symlink_to(outside)
    os.mkfifo(folder / "images" / "9.jpg")  # reading it would block the import
    (folder / "images" / "11.jpg").symlink_to(folder / "images" / "10.jpg")
    (folder / "images" / "12.txt").write_bytes(garment_photo(YELLOW))  # not <id>.jpg
    watch = outside_media()

    report = import_catalogue(folder)

    assert product_ids() == tuple(range(1, 13))
    reasons = {int(problem["id"]): problem["reason"] for problem in report.image_problems}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6, 8]
    for pk in (1, 2, 3, 4):
        assert reasons[pk] == "broken image (not an image file Pillow can read)"
    assert reasons[5] == "unsupported image type (GIF); use JPEG, PNG or WebP"
    assert reasons[6].startswith("image too large (8000x6000 pixels")
    assert "outside the images folder" in reasons[8]
    assert report.without_image == 10
    assert stored_files(media_root) == ["10.jpg", "11.jpg"]
    watch.assert_nothing_written()


def test_odd_but_sound_photos_are_stored_as_plain_jpegs(tmp_path, media_root):
    images = {
        1: jpeg_with_zip(),
        2: png_with_html(),
        3: sixteen_bit_png(),  # mid-grey background, light garment
        4: palette_png_with_transparency(),  # red garment on a transparent background
    }
    write_catalogue(tmp_path / "catalogue", [styles_line(pk) for pk in images], images=images)

    report = import_catalogue(tmp_path / "catalogue")

    assert (report.created, report.image_problems) == (4, [])
    stored = {pk: (media_root / "products" / f"{pk}.jpg").read_bytes() for pk in images}
    assert stored[1] == garment_photo(BLUE), "the appended zip is dropped"
    pixels = {}
    for pk, data in stored.items():
        assert jpeg_without_trailer(data) == data
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG"
            pixels[pk] = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert np.abs(pixels[3][2, 2] - 117).max() < 8 and np.abs(pixels[3][40, 30] - 233).max() < 8
    assert pixels[4][2, 2].min() > 245, "transparent parts are white"
    assert np.abs(pixels[4][40, 30] - np.array(RED)).max() < 30


# Never a partial product


def test_a_rejected_row_changes_nothing_of_its_product(tmp_path, media_root):
    folder = tmp_path / "catalogue"
    header = STYLES_HEADER + ",price"
    write_catalogue(folder, [styles_line(1) + ",9.99"], images={1: garment_photo(RED)}, header=header)
    import_catalogue(folder)
    before = Product.objects.filter(id=1).values().get()
    stored = (media_root / "products" / "1.jpg").read_bytes()
    # A new name, photo and price, but the price is not a number; and a new product, also refused.
    lines = [styles_line(1, name="Renamed") + ",cheap", styles_line(2) + ",-1"]
    write_catalogue(folder, lines, images={1: garment_photo(BLUE), 2: garment_photo(GREEN)}, header=header)

    report = import_catalogue(folder)

    assert [(row["line"], row["id"]) for row in report.rejected_rows] == [(2, "1"), (3, "2")]
    assert Product.objects.filter(id=1).values().get() == before
    assert not Product.objects.filter(id=2).exists()
    assert (media_root / "products" / "1.jpg").read_bytes() == stored
    assert stored_files(media_root) == ["1.jpg"]


# Images are replaced only once their row is committed


@pytest.fixture
def refusing_trigger(db):
    """A real database error: a trigger refuses any product whose name starts with REFUSED."""
    table = Product._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_marked_product() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN IF NEW.name LIKE 'REFUSED%' THEN RAISE EXCEPTION 'refused by the database'; END IF; "
                "RETURN NEW; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse_marked_product BEFORE INSERT OR UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_marked_product()"
            )
        else:
            for event in ("INSERT", "UPDATE"):
                cursor.execute(
                    f"CREATE TRIGGER refuse_marked_product_{event.lower()} BEFORE {event} ON {table} "
                    "WHEN NEW.name LIKE 'REFUSED%' BEGIN SELECT RAISE(ABORT, 'refused by the database'); END"
                )
    # The test's transaction is rolled back afterwards, and the trigger with it.


def assert_files_match_rows(media_root):
    for product in Product.objects.exclude(image=""):
        data = (media_root / product.image.name).read_bytes()
        assert image_checksum(data) == product.image_checksum, product.pk


def test_a_row_the_database_refuses_keeps_its_previous_image(
    tmp_path, media_root, refusing_trigger, monkeypatch, django_capture_on_commit_callbacks
):
    folder = tmp_path / "catalogue"
    first = {1: garment_photo(RED), 2: garment_photo(BLUE), 3: garment_photo(GREEN)}
    write_catalogue(folder, [styles_line(pk) for pk in (1, 2, 3)], images=first)
    import_catalogue(folder)
    announced = []
    monkeypatch.setattr(products_imported, "send", lambda sender, product_ids: announced.extend(product_ids))
    # Saved one by one, the rows also ask for embedding tasks: those would load the CNN.
    monkeypatch.setattr(queueing, "send_task", lambda *args, **kwargs: True)
    # Every row has a new photo; rows 2 (an update) and 4 (an insert) are refused by the
    # database, so the whole batch is rolled back and retried row by row.
    lines = [
        styles_line(1, name="Renamed"),
        styles_line(2, name="REFUSED update"),
        styles_line(3),
        styles_line(4, name="REFUSED insert"),
    ]
    second = {pk: garment_photo(YELLOW, size=(200 + pk, 300)) for pk in (1, 2, 3, 4)}
    write_catalogue(folder, lines, images=second)

    with django_capture_on_commit_callbacks(execute=True):
        report = import_catalogue(folder)

    assert [(row["line"], row["id"]) for row in report.rejected_rows] == [(3, "2"), (5, "4")]
    assert all("refused by the database" in row["reason"] for row in report.rejected_rows)
    assert (report.updated, report.created) == (2, 0)
    assert product_ids() == (1, 2, 3)
    assert (media_root / "products" / "2.jpg").read_bytes() == first[2]
    assert Product.objects.get(id=2).image_checksum == image_checksum(first[2])
    assert (media_root / "products" / "1.jpg").read_bytes() == second[1]
    assert (media_root / "products" / "3.jpg").read_bytes() == second[3]
    assert stored_files(media_root) == ["1.jpg", "2.jpg", "3.jpg"]
    assert_files_match_rows(media_root)
    assert sorted(announced) == [1, 3]


def test_a_batch_that_fails_midway_keeps_every_previous_image(tmp_path, media_root, monkeypatch):
    folder = tmp_path / "catalogue"
    first = {1: garment_photo(RED), 2: garment_photo(BLUE)}
    write_catalogue(folder, [styles_line(1), styles_line(2)], images=first)
    import_catalogue(folder)
    storage = Product._meta.get_field("image").storage
    saved = storage.save

    def disk_full_at_the_second_image(name, content, **kwargs):
        if name.startswith("products/2.jpg"):
            raise OSError(28, "No space left on device")
        return saved(name, content, **kwargs)

    monkeypatch.setattr(storage, "save", disk_full_at_the_second_image)
    write_catalogue(
        folder, [styles_line(1), styles_line(2)], images={1: garment_photo(GREEN), 2: garment_photo(YELLOW)}
    )

    with pytest.raises(OSError):
        import_catalogue(folder)

    assert stored_files(media_root) == ["1.jpg", "2.jpg"]
    assert (media_root / "products" / "1.jpg").read_bytes() == first[1]
    assert (media_root / "products" / "2.jpg").read_bytes() == first[2]
    assert_files_match_rows(media_root)
    assert ImportRun.objects.latest("started_at").finished_at is None
