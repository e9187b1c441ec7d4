"""The demo catalogue: drawn pictures, the dataset's layout, deterministic, imported as demo."""

import io

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from catalog.demo import (
    ARTICLE_TYPES,
    COLOURS,
    DEMO_FIRST_ID,
    demo_products,
    draw_product,
    import_demo_catalogue,
    write_demo_catalogue,
)
from catalog.importing.styles import read_styles
from catalog.models import Product
from tests.catalog_files import stored_files


def test_every_article_type_appears_with_demo_names():
    products = demo_products(40)

    assert {p.article_type.name for p in products} == {t.name for t in ARTICLE_TYPES}
    assert {"Tshirts", "Shirts", "Jeans", "Dresses", "Casual Shoes", "Watches", "Handbags", "Caps"} <= {
        t.name for t in ARTICLE_TYPES
    }
    assert all(p.name.startswith("Demo ") for p in products)
    assert len({p.colour for p in products}) > 5
    assert {p.pattern for p in products} == {"plain", "stripes", "dots", "checks"}
    assert [p.id for p in products] == list(range(DEMO_FIRST_ID, DEMO_FIRST_ID + 40))


def test_same_seed_same_catalogue_other_seed_other_catalogue():
    assert demo_products(30, seed=1) == demo_products(30, seed=1)
    assert demo_products(30, seed=1) != demo_products(30, seed=2)


def test_plain_product_is_drawn_in_its_colour_on_a_light_background():
    tee = next(p for p in demo_products(200) if p.article_type.name == "Tshirts" and p.pattern == "plain")

    image = draw_product(tee)

    assert image.size == (240, 320)
    assert image.getpixel((120, 180)) == COLOURS[tee.colour]
    assert image.getpixel((2, 2)) == (244, 244, 244)


def test_every_article_type_has_its_own_silhouette():
    outlines = set()
    for product in demo_products(len(ARTICLE_TYPES)):
        drawn = draw_product(product).convert("L")
        outlines.add(drawn.point(lambda v: 255 if v != 244 else 0).tobytes())

    assert len(outlines) == len(ARTICLE_TYPES)


def test_written_catalogue_has_the_dataset_layout_and_is_deterministic(tmp_path):
    first = write_demo_catalogue(tmp_path / "a", 12, seed=5)
    second = write_demo_catalogue(tmp_path / "b", 12, seed=5)

    rows = read_styles((first / "styles.csv").read_bytes())
    assert rows.rejected == [] and len(rows.rows) == 12
    images = sorted((first / "images").iterdir())
    assert [path.name for path in images] == [f"{DEMO_FIRST_ID + i}.jpg" for i in range(12)]
    with Image.open(io.BytesIO(images[0].read_bytes())) as image:
        assert image.format == "JPEG"
    assert (first / "styles.csv").read_bytes() == (second / "styles.csv").read_bytes()
    assert images[3].read_bytes() == (second / "images" / images[3].name).read_bytes()


@pytest.mark.django_db
def test_demo_import_creates_demo_products_with_images(media_root):
    report = import_demo_catalogue(24)

    assert (report.created, report.rejected, report.without_image) == (24, 0, 0)
    assert report.source == "demo catalogue (24 products, seed 2024)"
    assert Product.objects.filter(is_demo=True).count() == 24
    assert len(stored_files(media_root)) == 24
    assert import_demo_catalogue(24).unchanged == 24


@pytest.mark.django_db
def test_make_demo_catalog_command_writes_and_imports(tmp_path, media_root):
    out = io.StringIO()

    call_command(
        "make_demo_catalog", "--count", "15", "--out", str(tmp_path / "demo"), "--import", stdout=out
    )

    assert (tmp_path / "demo" / "styles.csv").exists()
    assert len(list((tmp_path / "demo" / "images").iterdir())) == 15
    assert "created:            15" in out.getvalue()
    assert Product.objects.filter(is_demo=True, name__startswith="Demo ").count() == 15


@pytest.mark.django_db
def test_make_demo_catalog_without_import_only_writes_files(tmp_path):
    call_command("make_demo_catalog", "--count", "3", "--out", str(tmp_path / "demo"), stdout=io.StringIO())

    assert len(list((tmp_path / "demo" / "images").iterdir())) == 3
    assert not Product.objects.exists()


def test_make_demo_catalog_needs_somewhere_to_put_the_products():
    with pytest.raises(CommandError, match="--out"):
        call_command("make_demo_catalog", "--count", "3")
