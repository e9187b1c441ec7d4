"""Importing zip archives: both layouts, admin-style uploads, and hostile archives."""

import stat
import zipfile

import pytest

from catalog.importing import CatalogueFileError, import_catalogue, open_uploaded_catalogue, sources
from catalog.models import ImportRun, Product
from tests.catalog_files import STYLES_HEADER, stored_files, styles_line, zip_bytes
from tests.images import image_bytes

pytestmark = pytest.mark.django_db

STYLES = ("\n".join([STYLES_HEADER, styles_line(1, "Red, Slim Tee"), styles_line(2)]) + "\n").encode()


def write_zip(path, members):
    path.write_bytes(zip_bytes(members))
    return path


@pytest.mark.parametrize("prefix", ["", "fashion-small/"])
def test_zip_of_the_catalogue_layout_imports(tmp_path, media_root, prefix):
    archive = write_zip(
        tmp_path / "catalogue.zip",
        {
            f"{prefix}styles.csv": STYLES,
            f"{prefix}images/1.jpg": image_bytes(),
            f"{prefix}images/2.jpg": image_bytes(),
        },
    )

    report = import_catalogue(archive)

    assert (report.created, report.without_image, report.rejected) == (2, 0, 0)
    assert Product.objects.get(id=1).name == "Red, Slim Tee"
    assert stored_files(media_root) == ["1.jpg", "2.jpg"]
    assert import_catalogue(archive).unchanged == 2


def test_zip_without_styles_csv_is_refused(tmp_path, media_root):
    archive = write_zip(tmp_path / "images.zip", {"images/1.jpg": image_bytes()})

    with pytest.raises(CatalogueFileError, match="holds no styles.csv"):
        import_catalogue(archive)


def test_corrupt_zip_is_refused(tmp_path, media_root):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(zip_bytes({"styles.csv": STYLES})[:-30])

    with pytest.raises(CatalogueFileError):
        import_catalogue(archive)
    assert not Product.objects.exists()


@pytest.mark.parametrize(
    "evil_name",
    ["../../escaped.jpg", "images/../../1.jpg", "/tmp/absolute.jpg", "..\\..\\windows.jpg", "C:/x.jpg"],
)
def test_zip_with_path_traversal_is_refused_and_nothing_written(tmp_path, media_root, evil_name):
    archive = write_zip(
        tmp_path / "evil.zip",
        {"styles.csv": STYLES, "images/1.jpg": image_bytes(), evil_name: image_bytes()},
    )

    with pytest.raises(CatalogueFileError, match="refused") as error:
        import_catalogue(archive)

    assert "Nothing was imported" in str(error.value)
    assert not Product.objects.exists()
    assert not ImportRun.objects.exists()
    assert stored_files(media_root) == []
    assert not (tmp_path / "escaped.jpg").exists()
    assert not (media_root.parent / "escaped.jpg").exists()


def test_zip_with_a_symlink_is_refused(tmp_path, media_root):
    link = zipfile.ZipInfo("images/2.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("styles.csv", STYLES)
        zf.writestr("images/1.jpg", image_bytes())
        zf.writestr(link, "/etc/passwd")

    with pytest.raises(CatalogueFileError, match="symlinks"):
        import_catalogue(archive)
    assert not Product.objects.exists()


def test_uploaded_styles_with_a_zip_of_images_at_its_root(tmp_path, media_root):
    styles = tmp_path / "upload.csv"
    styles.write_bytes(STYLES)
    archive = write_zip(tmp_path / "pictures.bin", {"1.jpg": image_bytes(), "__MACOSX/._1.jpg": b"junk"})

    with open_uploaded_catalogue(styles, archive, "test upload") as catalogue:
        report = import_catalogue(catalogue)

    assert (report.source, report.created, report.without_image) == ("test upload", 2, 1)
    assert stored_files(media_root) == ["1.jpg"]


def test_uploaded_styles_alone_imports_rows_without_images(tmp_path, media_root):
    styles = tmp_path / "styles.csv"
    styles.write_bytes(STYLES)

    with open_uploaded_catalogue(styles, None) as catalogue:
        report = import_catalogue(catalogue)

    assert (report.created, report.without_image) == (2, 2)


def test_upload_that_is_not_a_zip_is_refused(tmp_path, media_root):
    fake = tmp_path / "archive.zip"
    fake.write_bytes(b"this is not a zip")

    with pytest.raises(CatalogueFileError, match="not a zip"):
        open_uploaded_catalogue(None, fake)


def test_oversized_image_in_a_zip_is_reported(tmp_path, media_root, monkeypatch):
    monkeypatch.setattr(sources, "MAX_IMAGE_BYTES", 100)
    archive = write_zip(tmp_path / "c.zip", {"styles.csv": STYLES, "images/1.jpg": image_bytes()})

    report = import_catalogue(archive)

    assert "larger than" in report.image_problems[0]["reason"]
    assert report.without_image == 2


def test_an_archive_with_too_many_entries_is_refused(tmp_path, media_root, monkeypatch):
    monkeypatch.setattr(sources, "MAX_ARCHIVE_ENTRIES", 3)
    archive = write_zip(
        tmp_path / "many.zip", {"styles.csv": STYLES, **{f"images/{i}.jpg": b"x" for i in range(5)}}
    )

    with pytest.raises(CatalogueFileError, match="6 entries"):
        import_catalogue(archive)
    assert not Product.objects.exists()


def test_an_archive_that_would_unpack_too_large_is_refused_before_reading(tmp_path, media_root, monkeypatch):
    monkeypatch.setattr(sources, "MAX_ARCHIVE_BYTES", 10_000)
    bomb = write_zip(tmp_path / "bomb.zip", {"styles.csv": STYLES, "images/1.jpg": b"\0" * 50_000})

    with pytest.raises(CatalogueFileError, match="would unpack to"):
        import_catalogue(bomb)
    assert stored_files(media_root) == []
