"""Turn an image file into the model's input: one function for catalogue photos and uploads.

Catalogue photos and shopper uploads must go through exactly the same steps, otherwise
their embeddings drift apart and visual search gets worse for no visible reason.
"""

import io
import logging
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

IMAGE_SIZE = 224
# Catalogue photos are shot on white, so padding with white adds no new "object".
BACKGROUND = (255, 255, 255)
# Formats people actually photograph products in. Pillow would also open formats such as
# EPS, whose loader runs Ghostscript, so anything else is refused before decoding.
# (Phone multi-picture JPEGs, MPO, open through the JPEG plugin.)
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# Above this a photo is refused before decoding (the shop passes its own IMAGE_MAX_PIXELS).
DEFAULT_MAX_PIXELS = 40_000_000


class InvalidImage(ValueError):
    """The file cannot be used as a product photo; the message is safe to show a shopper."""


# A crop box smaller than this share of the photo's width or height is refused.
MIN_CROP = 0.05


def parse_crop(x, y, width, height) -> tuple[float, float, float, float]:
    """A crop box as fractions of the upright photo (left, top, width, height), checked.

    Raises ValueError with a message for the shopper (or API client) when the box is not
    inside the photo or is too small.
    """
    try:
        box = tuple(float(value) for value in (x, y, width, height))
    except (TypeError, ValueError):
        raise ValueError("The crop box must be four numbers: x, y, width and height, as fractions.") from None
    left, top, w, h = box
    if not all(np.isfinite(box)) or left < 0 or top < 0 or left + w > 1.0001 or top + h > 1.0001:
        raise ValueError("The crop box must lie inside the photo (fractions from 0 to 1).")
    if w < MIN_CROP or h < MIN_CROP:
        raise ValueError(f"The crop box must cover at least {MIN_CROP:.0%} of the photo's width and height.")
    return box


def prepare_image(source, max_pixels: int = DEFAULT_MAX_PIXELS, crop=None) -> np.ndarray:
    """Read an image and return it as a 224x224x3 uint8 RGB array ready for embedding.

    ``source`` is raw bytes, a file path, or a binary file object (read from its start).
    The photo is turned upright from its EXIF orientation, converted to RGB (transparent
    parts become white), shrunk or enlarged to fit 224x224 without distortion and centred
    on white. ``crop`` (from :func:`parse_crop`) keeps only that part of the upright
    photo. Raises :class:`InvalidImage` for files that are not images, are damaged, or
    have more than ``max_pixels`` pixels.
    """
    stream = _as_stream(source)
    try:
        image = Image.open(stream, formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning is only raised when warnings are turned into errors.
        raise _too_large(None, max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage(
            "This file is not an image we can read. Please use a JPEG, PNG or WebP photo."
        ) from exc
    except Exception as exc:  # Pillow's parsers raise many types on hostile input.
        raise _damaged() from exc
    with image:
        width, height = image.size
        if width < 1 or height < 1:
            raise _damaged()
        if width * height > max_pixels:
            raise _too_large(image.size, max_pixels)
        try:
            # JPEGs can decode straight at 1/2, 1/4 or 1/8 scale: large uploads cost far
            # less time and memory, and the result stays at least 224 px on each side.
            scale = 1.0 / min(crop[2], crop[3]) if crop else 1.0
            image.draft("RGB", (round(IMAGE_SIZE * scale), round(IMAGE_SIZE * scale)))
            image.load()
            upright = ImageOps.exif_transpose(image)
            rgb = _to_rgb(upright)
            if crop:
                rgb = _cropped(rgb, crop)
        except Exception as exc:  # truncated data, broken EXIF, unsupported codec...
            logger.info("unreadable image: %s", exc)
            raise _damaged() from exc
    return _fit_on_white(rgb)


def _cropped(image, crop):
    left, top, width, height = crop
    w, h = image.size
    box = (round(left * w), round(top * h), round((left + width) * w), round((top + height) * h))
    box = (box[0], box[1], max(box[2], box[0] + 1), max(box[3], box[1] + 1))
    return image.crop(box)


def _as_stream(source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as file:
            return io.BytesIO(file.read())
    if hasattr(source, "seek") and (not hasattr(source, "seekable") or source.seekable()):
        # Upload handlers and form validation leave the position at the end.
        source.seek(0)
        return source
    return io.BytesIO(source.read())


def _too_large(size, max_pixels):
    limit = f"{max_pixels / 1_000_000:g} megapixels"
    if size is None:
        return InvalidImage(f"This image is too large. Please use a photo of at most {limit}.")
    width, height = size
    return InvalidImage(
        f"This image is too large ({width}x{height} pixels). Please use a photo of at most {limit}."
    )


def _damaged():
    return InvalidImage("This image file is damaged or incomplete. Please try another photo.")


def _to_rgb(image):
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = _to_8_bit_grey(image)
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _to_8_bit_grey(image):
    # Pillow clips 16-bit and float greyscale to 0-255 instead of rescaling it.
    values = np.asarray(image, dtype=np.float32)
    peak = float(values.max()) if values.size else 0.0
    if image.mode == "F" and peak <= 1.0:
        values = values * 255.0
    elif peak > 255.0:
        values = values / 257.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def _fit_on_white(image):
    width, height = image.size
    scale = min(IMAGE_SIZE / width, IMAGE_SIZE / height)
    size = (max(1, min(IMAGE_SIZE, round(width * scale))), max(1, min(IMAGE_SIZE, round(height * scale))))
    if size != image.size:
        image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    canvas = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
    canvas.paste(image, ((IMAGE_SIZE - size[0]) // 2, (IMAGE_SIZE - size[1]) // 2))
    return np.array(canvas, dtype=np.uint8)
