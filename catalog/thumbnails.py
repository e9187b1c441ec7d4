"""Product photo thumbnails: small WebP copies in the sizes the pages show, made once per photo.

A photo's thumbnails are stored through the default storage (the media folder or the
object store) as ``thumbnails/<checksum>/<width>.webp``: the photo fitted into a 3:4 box
that many pixels wide, never enlarged. Names depend only on the photo's content, so they
may be cached for good, a replaced photo gets new addresses, and products sharing a photo
share its thumbnails. ``remove_unused_thumbnails`` deletes what no product needs any more.

Thumbnails are made after a product's row commits, in a background task
(``queue_thumbnails``), or by ``manage.py make_thumbnails`` for photos that have none.
Pages never make them: until a photo's thumbnails exist, its ``<img>`` shows the full
photo (``photo_sources``). Which photos have them is recorded on the product rows
(``Product.thumbnails_checksum``, by ``ProductQuerySet.record_thumbnails`` with the
checksums ``make_missing_thumbnails`` reports ready), so a page of cards asks neither the
storage nor the cache.

This module knows files, not queries: callers pass the products (catalog.models uses it).
"""

import hashlib
import io
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from celery import current_app
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

FOLDER = "thumbnails"
# Widths stored for every photo. Each size below is shown from the smallest stored width
# covering it once (1x) and twice (2x, high-density screens).
THUMBNAIL_WIDTHS = (120, 240, 480, 960)
# CSS widths of the 3:4 photo boxes in static/css/shop.css: cart lines (3.75rem), photo
# search examples (about 5.5rem), product cards (about 9.5-18rem) and the product page
# (at most 30rem).
PHOTO_SIZES = {"line": 60, "tile": 90, "card": 240, "page": 480}
WEBP_QUALITY = 80

MAKE_TASK = "catalog.tasks.make_thumbnails"
SWEEP_TASK = "catalog.tasks.sweep_thumbnails"
TASK_BATCH_SIZE = 100


class ThumbnailProblem(Exception):
    """The photo cannot be made into thumbnails (broken, too large, not an image)."""


def thumbnail_name(checksum: str, width: int) -> str:
    """Storage name of a photo's thumbnail ``width`` pixels wide."""
    return f"{FOLDER}/{checksum}/{width}.webp"


def _box(width):
    return width, width * 4 // 3


# Reading: what a page shows


@dataclass(frozen=True)
class PhotoSources:
    """What an ``<img>`` of a product photo needs: ``srcset`` is empty without thumbnails."""

    src: str
    srcset: str
    width: int
    height: int


def _covering(width):
    return next((stored for stored in THUMBNAIL_WIDTHS if stored >= width), THUMBNAIL_WIDTHS[-1])


def photo_sources(product, size: str) -> PhotoSources:
    """The addresses to show ``product``'s photo at ``size`` (a key of ``PHOTO_SIZES``):
    its thumbnails with 1x/2x variants once they exist, the full photo until then."""
    width, height = _box(PHOTO_SIZES[size])
    checksum = product.image_checksum
    if not (product.image and checksum and product.thumbnails_checksum == checksum):
        return PhotoSources(product.image_url, "", width, height)
    one, two = _covering(width), _covering(2 * width)
    src = default_storage.url(thumbnail_name(checksum, one))
    srcset = (
        f"{src} 1x" if one == two else f"{src} 1x, {default_storage.url(thumbnail_name(checksum, two))} 2x"
    )
    return PhotoSources(src, srcset, width, height)


def _missing_widths(checksum):
    try:
        stored = set(default_storage.listdir(f"{FOLDER}/{checksum}")[1])
    except (FileNotFoundError, NotADirectoryError):
        stored = set()
    return [width for width in THUMBNAIL_WIDTHS if f"{width}.webp" not in stored]


# Writing: making the files


def thumbnail_images(data: bytes, widths: Iterable[int] = THUMBNAIL_WIDTHS) -> dict[int, bytes]:
    """WebP thumbnails of an encoded photo, by width: the photo as browsers show it
    (EXIF orientation applied, transparency on white) fitted into 3:4 boxes.

    Raises ``ThumbnailProblem`` for a photo over ``IMAGE_MAX_PIXELS`` (checked before
    decoding) or one Pillow cannot decode.
    """
    widths = sorted(widths, reverse=True)
    try:
        with Image.open(io.BytesIO(data)) as image:
            pixels = image.width * image.height
            if pixels > settings.IMAGE_MAX_PIXELS:
                raise ThumbnailProblem(f"photo too large ({image.width}x{image.height} pixels)")
            # JPEG decodes straight at a fraction of its size when that still fills the box.
            image.draft("RGB", _box(widths[0]))
            photo = _rgb_on_white(ImageOps.exif_transpose(image))
    except ThumbnailProblem:
        raise
    except Image.DecompressionBombError:
        raise ThumbnailProblem("photo too large") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ThumbnailProblem(f"broken photo ({error})") from error
    made = {}
    for width in widths:  # largest first: each smaller one is resized from the last
        photo.thumbnail(_box(width), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        photo.save(buffer, "WEBP", quality=WEBP_QUALITY)
        made[width] = buffer.getvalue()
    return made


def _rgb_on_white(image):
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def make_thumbnails(product) -> int:
    """Store the missing thumbnails of ``product``'s photo; returns how many were written
    (0 when all were there, or the product has no photo).

    Raises ``ThumbnailProblem`` when the photo cannot be read as an image; storage
    errors (``OSError``) are left to the caller.
    """
    checksum = product.image_checksum
    if not (product.image and checksum):
        return 0
    missing = _missing_widths(checksum)
    if missing:
        with product.image.open("rb") as file:
            data = file.read()
        if hashlib.sha256(data).hexdigest() != checksum:
            # The file is being replaced (an import moves new photos into place after their
            # rows commit): thumbnails under this name must show the photo with this checksum.
            raise ThumbnailProblem("the stored photo is not the one its checksum describes")
        for width, webp in thumbnail_images(data, missing).items():
            _store(thumbnail_name(checksum, width), webp)
    return len(missing)


def _store(name, data):
    content = ContentFile(data)
    content.content_type = "image/webp"  # an object store sends it as the file's type
    if default_storage.exists(name):  # made meanwhile by another worker: same content
        return
    stored = default_storage.save(name, content)
    if stored != name:  # a local storage renames instead of overwriting a file that just appeared
        default_storage.delete(stored)


@dataclass
class ThumbnailReport:
    """What ``make_missing_thumbnails`` did, in photos."""

    made: int = 0
    present: int = 0
    failed: int = 0
    # Checksums of the photos whose thumbnails are all stored now.
    ready: set = field(default_factory=set)

    def as_dict(self) -> dict:
        return {"made": self.made, "present": self.present, "failed": self.failed}


def make_missing_thumbnails(
    products: Iterable, *, on_progress: Callable[[int], None] | None = None
) -> ThumbnailReport:
    """Make the thumbnails that are missing for these products' photos (idempotent).

    A photo that cannot be made into thumbnails is logged and counted as failed; its
    pages keep showing the full photo. ``on_progress(done)`` is called after each product.
    """
    report = ThumbnailReport()
    done_checksums = set()
    for done, product in enumerate(products, start=1):
        if product.image_checksum not in done_checksums:
            try:
                written = make_thumbnails(product)
            except ThumbnailProblem as problem:
                logger.warning("No thumbnails for product %s: %s", product.pk, problem)
                report.failed += 1
            else:
                report.made += bool(written)
                report.present += not written
                report.ready.add(product.image_checksum)
            done_checksums.add(product.image_checksum)
        else:
            report.present += 1
        if on_progress:
            on_progress(done)
    return report


def remove_unused_thumbnails(checksums_in_use: Iterable[str]) -> int:
    """Delete the thumbnails of photos no product has any more; returns how many photos'.

    ``checksums_in_use`` is read after the folders are listed (pass a lazy query): a photo
    stored meanwhile has its row committed before its thumbnails, so they are kept.
    """
    try:
        folders = default_storage.listdir(FOLDER)[0]
    except FileNotFoundError:
        return 0
    in_use = set(checksums_in_use)
    removed = 0
    for checksum in folders:
        if checksum in in_use:
            continue
        folder = f"{FOLDER}/{checksum}"
        for name in default_storage.listdir(folder)[1]:
            default_storage.delete(f"{folder}/{name}")
        _remove_empty_folder(folder)
        removed += 1
    return removed


def _remove_empty_folder(folder):
    # The object store has no folders; a local one leaves an empty directory behind.
    try:
        path = default_storage.path(folder)
    except NotImplementedError:
        return
    try:
        os.rmdir(path)
    except OSError:
        pass


# Queueing: made in the background after the photo's row commits


def queue_thumbnails(product_ids: Iterable[int]) -> None:
    """Make these products' thumbnails in a background task once the current transaction
    commits. Never fails the caller: with the broker down, ``make_thumbnails`` (the
    command) fills them later and pages show the full photos meanwhile."""
    product_ids = sorted(set(product_ids))
    if product_ids:
        transaction.on_commit(lambda: _send(product_ids))


def _send(product_ids):
    app = current_app
    for start in range(0, len(product_ids), TASK_BATCH_SIZE):
        chunk = product_ids[start : start + TASK_BATCH_SIZE]
        try:
            app.tasks[MAKE_TASK].apply_async(args=(chunk,), retry=False)
        except Exception as error:  # broker unreachable (kombu raises several types), or eager failure
            logger.warning("Could not make thumbnails of products %s (%s).", chunk, error)
            return
