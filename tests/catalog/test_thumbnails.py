"""Product photo thumbnails: WebP copies in the sizes pages show, made once per photo after
its row commits (save, import) or by ``make_thumbnails``, linked with srcset, and never a
reason for a page to fail."""

import io
import re
from html import unescape

import numpy as np
import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db.models.signals import post_save
from django.urls import reverse
from PIL import Image, ImageDraw, ImageFilter

from catalog import models as models_module
from catalog import tasks as catalog_tasks
from catalog import thumbnails
from catalog.importing import import_catalogue
from catalog.models import Product
from catalog.signals import products_imported
from catalog.thumbnails import THUMBNAIL_WIDTHS, thumbnail_name
from config.storage import MediaStorage
from recommender import signals as embedding_signals
from tests import workers as worker_processes
from tests.catalog_files import styles_line, write_catalogue
from tests.factories import ProductFactory
from tests.images import BLUE, GREEN, RED, YELLOW, garment_photo
from tests.workers import Workers

pytestmark = pytest.mark.django_db

PURPLE, ORANGE = (120, 40, 150), (240, 130, 20)
WORKER_REDIS_URL = "redis://127.0.0.1:6379/12"


def large_photo(colour, size=(2400, 3200), seed=0):
    """A studio-like product photo at the size real catalogues deliver: a soft-edged
    garment on an off-white background with sensor noise, JPEG quality 88 (~1.7 MB)."""
    width, height = size
    sketch = Image.new("RGB", (width // 8, height // 8), (245, 245, 242))
    ImageDraw.Draw(sketch).rounded_rectangle(
        (width // 40, height // 80, width // 10, height // 9), radius=20, fill=colour
    )
    image = sketch.filter(ImageFilter.GaussianBlur(2)).resize(size, Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).normal(0, 6, (height, width, 1))
    pixels = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def own_media(media_root):
    return media_root


@pytest.fixture(autouse=True)
def no_embedding():
    """Saved photos are not embedded here (recommender tests cover that): only the
    catalogue's own work runs when a test commits."""
    post_save.disconnect(embedding_signals.embed_saved_product, sender=Product)
    products_imported.disconnect(embedding_signals.embed_imported_products)
    yield
    post_save.connect(embedding_signals.embed_saved_product, sender=Product)
    products_imported.connect(embedding_signals.embed_imported_products)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what waits for the commit (the thumbnail task, eagerly) when the block ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def photo_product(data, **fields):
    return ProductFactory(image=ContentFile(data, name="upload.jpg"), **fields)


def stored_thumbnails(media_root):
    folder = media_root / "thumbnails"
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*.webp")) if folder.exists() else []


def open_thumbnail(media_root, checksum, width):
    image = Image.open(media_root / thumbnail_name(checksum, width))
    image.load()
    return image


def image_sources(html, img_class):
    """(src, srcset) of every <img> with this class, in page order."""
    found = []
    for tag in re.findall(rf'<img class="{img_class}"[^>]*>', html):
        src = re.search(r' src="([^"]*)"', tag).group(1)
        srcset = re.search(r' srcset="([^"]*)"', tag)
        found.append((unescape(src), unescape(srcset.group(1)) if srcset else ""))
    return found


# Made once per photo


def test_saving_a_photo_makes_webp_thumbnails_of_every_width(committed, media_root):
    with committed():
        product = photo_product(garment_photo(RED, size=(600, 800)))

    assert stored_thumbnails(media_root) == sorted(
        f"{product.image_checksum}/{width}.webp" for width in THUMBNAIL_WIDTHS
    )
    for width in THUMBNAIL_WIDTHS:
        image = open_thumbnail(media_root, product.image_checksum, width)
        assert image.format == "WEBP"
        # Fitted into a 3:4 box of that width, never enlarged past the 600x800 photo.
        assert image.size == (min(width, 600), min(width * 4 // 3, 800))
        assert image.getpixel((image.width // 2, image.height // 2))[0] > 150  # the red garment


def test_a_wide_or_rotated_photo_keeps_its_shape(committed, media_root):
    photo = Image.open(io.BytesIO(garment_photo(BLUE, size=(1200, 400))))
    exif = photo.getexif()
    exif[0x0112] = 6  # shown turned a quarter clockwise: 400x1200 on screen
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", exif=exif)
    with committed():
        product = photo_product(buffer.getvalue())

    assert open_thumbnail(media_root, product.image_checksum, 240).size == (107, 320)
    assert open_thumbnail(media_root, product.image_checksum, 960).size == (400, 1200)


def test_an_import_makes_thumbnails_of_new_and_changed_photos_only(committed, media_root, tmp_path):
    folder = tmp_path / "catalogue"
    write_catalogue(
        folder, [styles_line(1), styles_line(2)], images={1: garment_photo(RED), 2: garment_photo(BLUE)}
    )
    with committed():
        import_catalogue(folder)
    first = {p.pk: p.image_checksum for p in Product.objects.all()}
    assert len(stored_thumbnails(media_root)) == 2 * len(THUMBNAIL_WIDTHS)
    made_at = {path: path.stat().st_mtime_ns for path in (media_root / "thumbnails").rglob("*.webp")}

    write_catalogue(
        folder, [styles_line(1), styles_line(2)], images={1: garment_photo(RED), 2: garment_photo(GREEN)}
    )
    with committed():
        import_catalogue(folder)

    second = {p.pk: p.image_checksum for p in Product.objects.all()}
    assert second[1] == first[1] and second[2] != first[2]
    assert {path.split("/")[0] for path in stored_thumbnails(media_root)} == set(first.values()) | {second[2]}
    for path, mtime in made_at.items():  # the unchanged photo's thumbnails were not made again
        assert path.stat().st_mtime_ns == mtime


def test_the_command_fills_missing_thumbnails_and_changes_nothing_when_run_again(media_root):
    # Saved without running what waits for the commit: as photos stored before thumbnails.
    products = [photo_product(garment_photo(colour)) for colour in (RED, BLUE, GREEN)]
    twin = photo_product(garment_photo(RED))  # the same photo: one set of thumbnails
    ProductFactory()  # no photo
    assert stored_thumbnails(media_root) == []
    out = io.StringIO()

    call_command("make_thumbnails", stdout=out, verbosity=1, stderr=io.StringIO())

    assert "Thumbnails made for 3 photos; 1 already had them; 0 could not be read" in out.getvalue()
    assert len(stored_thumbnails(media_root)) == 3 * len(THUMBNAIL_WIDTHS)
    assert twin.image_checksum == products[0].image_checksum
    made_at = {path: path.stat().st_mtime_ns for path in (media_root / "thumbnails").rglob("*.webp")}

    lost = media_root / thumbnail_name(products[1].image_checksum, 480)
    lost.unlink()
    del made_at[lost]
    out = io.StringIO()
    call_command("make_thumbnails", stdout=out, verbosity=1, stderr=io.StringIO())

    assert "Thumbnails made for 1 photos; 3 already had them" in out.getvalue()
    for path, mtime in made_at.items():
        assert path.stat().st_mtime_ns == mtime  # the one file put back, no other rewritten
    assert open_thumbnail(media_root, products[1].image_checksum, 480).size == (240, 320)


def test_a_replaced_photo_gets_new_addresses_and_the_old_thumbnails_can_be_cleaned(
    committed, media_root, client
):
    with committed():
        product = photo_product(garment_photo(RED))
    old_page = client.get(product.get_absolute_url()).content.decode()
    old = product.image_checksum

    with committed():
        product = Product.objects.get(pk=product.pk)
        product.image = ContentFile(garment_photo(YELLOW), name="new.jpg")
        product.save()

    new_page = client.get(product.get_absolute_url()).content.decode()
    [(old_src, _)] = image_sources(old_page, "product__image")
    [(new_src, _)] = image_sources(new_page, "product__image")
    assert old in old_src and product.image_checksum in new_src and old_src != new_src
    call_command("make_thumbnails", "--clean", stdout=io.StringIO(), verbosity=0)
    assert {path.split("/")[0] for path in stored_thumbnails(media_root)} == {product.image_checksum}
    assert not (media_root / "thumbnails" / old).exists()


def test_an_import_that_replaces_a_photo_never_stores_thumbnails_of_the_old_one(committed, media_root):
    # Between a row's commit and its new file being moved into place, the old file is
    # still there: thumbnails under the new checksum must not be made from it.
    product = photo_product(garment_photo(RED))
    product.image_checksum = "f" * 64  # the row already describes a photo not yet in place

    with pytest.raises(thumbnails.ThumbnailProblem):
        thumbnails.make_thumbnails(product)
    assert stored_thumbnails(media_root) == []


# Pages


def test_pages_link_thumbnails_with_1x_and_2x_variants(committed, client):
    with committed():
        product = photo_product(garment_photo(RED), name="Red Tee")
        other = photo_product(garment_photo(BLUE))
    checksum = product.image_checksum

    def url(width):
        return f"/media/{thumbnail_name(checksum, width)}"

    detail = client.get(product.get_absolute_url()).content.decode()
    assert (
        f'<img class="product__image" src="{url(480)}" srcset="{url(480)} 1x, {url(960)} 2x" '
        'width="480" height="640" alt="Red Tee" loading="eager">'
    ) in detail
    # The other product is shown as a similar item (same article type and colour).
    assert image_sources(detail, "product-card__image") == [
        (
            f"/media/{thumbnail_name(other.image_checksum, 240)}",
            f"/media/{thumbnail_name(other.image_checksum, 240)} 1x, /media/{thumbnail_name(other.image_checksum, 480)} 2x",
        )
    ]

    listing = client.get("/").content.decode()
    assert (url(240), f"{url(240)} 1x, {url(480)} 2x") in image_sources(listing, "product-card__image")
    assert 'width="240" height="320" alt="Red Tee" loading="lazy"' in listing

    client.post(reverse("shop:add"), {"product_id": product.pk, "quantity": 1})
    cart = client.get(reverse("shop:cart")).content.decode()
    assert (
        f'<img class="line__image" src="{url(120)}" srcset="{url(120)} 1x" width="60" height="80" alt="" loading="lazy">'
        in cart
    )

    search = client.get(reverse("recommender:photo_search")).content.decode()
    assert (
        f'src="{url(120)}" srcset="{url(120)} 1x, {url(240)} 2x" width="90" height="120" alt="Search with the photo of Red Tee"'
        in search
    )


def test_until_thumbnails_exist_pages_show_the_full_photo(client):
    product = photo_product(garment_photo(RED))  # its thumbnail task has not run

    page = client.get(product.get_absolute_url()).content.decode()

    assert image_sources(page, "product__image") == [(product.image_url, "")]

    call_command("make_thumbnails", verbosity=0)
    page = client.get(product.get_absolute_url()).content.decode()
    assert image_sources(page, "product__image")[0][0].endswith("/480.webp")


def hostile_photos():
    small = garment_photo(RED, size=(240, 320))
    return {
        "not an image": b"<?php system($_GET['c']); ?>",
        "truncated JPEG": small[: len(small) // 3],
        "too many pixels": garment_photo(GREEN, size=(400, 400)),
        "empty file": b"",
    }


@pytest.mark.parametrize("kind", sorted(hostile_photos()))
def test_a_hostile_or_broken_stored_photo_never_breaks_a_page(
    kind, committed, client, settings, media_root, caplog
):
    settings.IMAGE_MAX_PIXELS = 100_000  # the 400x400 photo is over it
    with committed():  # stored past the import's checks, as a file changed on disk would be
        product = photo_product(hostile_photos()[kind], name="Odd One")
        neighbour = photo_product(garment_photo(BLUE))
    assert "No thumbnails for product" in caplog.text

    for url in (
        product.get_absolute_url(),
        neighbour.get_absolute_url(),
        "/",
        reverse("recommender:photo_search"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get(product.get_absolute_url()).content.decode()
    assert image_sources(page, "product__image") == [(product.image_url, "")]
    report = io.StringIO()
    call_command("make_thumbnails", stdout=report, verbosity=1, stderr=io.StringIO())
    assert "1 already had them; 1 could not be read" in report.getvalue()
    assert [path.split("/")[0] for path in stored_thumbnails(media_root)] == [neighbour.image_checksum] * len(
        THUMBNAIL_WIDTHS
    )


def test_a_thumbnail_task_that_cannot_be_sent_fails_nothing(committed, monkeypatch, client, caplog):
    task = thumbnails.current_app.tasks[thumbnails.MAKE_TASK]

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(task, "apply_async", broker_down)
    with committed():
        product = photo_product(garment_photo(RED))

    assert "Could not make thumbnails" in caplog.text
    assert client.get(product.get_absolute_url()).status_code == 200


def test_pages_ask_neither_the_storage_nor_the_cache_whether_thumbnails_exist(committed, monkeypatch):
    with committed():
        products = [photo_product(garment_photo(colour)) for colour in (RED, BLUE, GREEN)]
    asked = []
    monkeypatch.setattr(thumbnails.default_storage, "listdir", lambda path: asked.append(path))
    monkeypatch.setattr(cache, "get", lambda *args, **kwargs: asked.append(args))
    fresh = Product.objects.filter(pk__in=[product.pk for product in products])

    assert all(thumbnails.photo_sources(product, "card").srcset for product in fresh)
    assert asked == []


def test_a_replaced_photo_shows_in_full_until_its_own_thumbnails_are_made(committed, monkeypatch):
    with committed():
        product = photo_product(garment_photo(RED))
    monkeypatch.setattr(models_module, "queue_thumbnails", lambda ids: None)  # the task is lost
    product.image = ContentFile(garment_photo(BLUE), name="new.jpg")
    product.save()
    product.refresh_from_db()

    assert thumbnails.photo_sources(product, "card") == thumbnails.PhotoSources(
        product.image_url, "", 240, 320
    )
    call_command("make_thumbnails", verbosity=0)
    product.refresh_from_db()
    assert thumbnails.photo_sources(product, "card").src.endswith(f"{product.image_checksum}/240.webp")


@pytest.mark.celery_worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_makes_the_thumbnails_of_a_saved_photo(settings, tmp_path, media_root, client):
    with worker_processes.services_mode(settings, WORKER_REDIS_URL, visibility_timeout=30):
        workers = Workers(tmp_path, WORKER_REDIS_URL, visibility_timeout=30)
        workers.start("thumbnails")
        try:
            product = photo_product(garment_photo(RED))  # committed: the task goes to Redis
            page = client.get(product.get_absolute_url()).content.decode()
            assert image_sources(page, "product__image") == [(product.image_url, "")]  # not made yet

            worker_processes.wait_for(
                lambda: len(stored_thumbnails(media_root)) == len(THUMBNAIL_WIDTHS),
                60,
                "the worker to make the thumbnails",
                workers.logs,
            )
            page = client.get(product.get_absolute_url()).content.decode()
        finally:
            workers.stop_all()
    # The worker recorded it on the product row: the next page shows the thumbnails.
    assert image_sources(page, "product__image")[0][0].endswith(f"{product.image_checksum}/480.webp")


# The measurable target: similar items cost a fraction of their full photos


@pytest.mark.slow
def test_similar_items_on_a_product_page_download_less_than_a_tenth_of_their_full_photos(committed, client):
    colours = [RED, BLUE, GREEN, YELLOW, PURPLE, ORANGE]
    with committed():
        product, *others = [photo_product(large_photo(colour, seed=i)) for i, colour in enumerate(colours)]
    page = client.get(product.get_absolute_url()).content.decode()
    similar = page[page.index('<section class="similar"') :]
    shown = image_sources(similar, "product-card__image")
    assert len(shown) == len(others) == 5

    thumbnail_bytes = 0
    for _, srcset in shown:
        url = srcset.split(", ")[-1].split()[0]  # the 2x variant, as a high-density screen takes
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
        thumbnail_bytes += len(b"".join(response.streaming_content))
    full_bytes = sum(len(b"".join(client.get(p.image_url).streaming_content)) for p in others)

    assert full_bytes > 5 * 1_000_000  # real-size photos, not toy ones
    assert thumbnail_bytes < full_bytes / 10


def test_the_periodic_sweep_makes_the_thumbnails_a_lost_task_left_unmade(committed, monkeypatch):
    monkeypatch.setattr(models_module, "queue_thumbnails", lambda ids: None)  # the task is lost
    with committed():
        lost = photo_product(garment_photo(RED))
    assert list(Product.objects.needing_thumbnails()) == [lost]

    with committed():  # the sweep's tasks go out once it commits
        assert catalog_tasks.sweep_thumbnails() == 1

    lost.refresh_from_db()
    assert thumbnails.photo_sources(lost, "card").srcset
    assert not Product.objects.needing_thumbnails().exists()


def test_thumbnails_in_a_bucket_are_cached_for_a_year_and_photos_for_an_hour():
    storage = MediaStorage(bucket_name="shop", object_parameters={"CacheControl": "public, max-age=3600"})

    assert storage.get_object_parameters("thumbnails/ab12/240.webp")["CacheControl"] == (
        "public, max-age=31536000, immutable"
    )
    assert storage.get_object_parameters("products/1.jpg")["CacheControl"] == "public, max-age=3600"
