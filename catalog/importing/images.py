"""Checking catalogue images before they are stored.

Images are identified by their content, never by their file name: Pillow must recognise
and fully decode them, and their pixel count must stay under ``IMAGE_MAX_PIXELS``.
JPEGs are stored byte for byte (up to their end marker: whatever was appended, a zip or
a script, is dropped); PNG and WebP photos are converted to JPEG, transparent parts on
white, so every stored file really is what its ``.jpg`` name says.
"""

import io

import numpy as np
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from PIL import Image, UnidentifiedImageError

from .errors import ImageProblem

STORED_AS_IS = {"JPEG"}
CONVERTED = {"PNG", "WEBP", "MPO"}
JPEG_QUALITY = 90
WHITE = (255, 255, 255)
_JPEG_START = b"\xff\xd8"


def photo_upload_limit_exceeded(upload: UploadedFile) -> str | None:
    """For a photo upload over ``PHOTO_UPLOAD_MAX_BYTES``, the limit as people read it
    (e.g. "8.0 MB"); None when the upload is within it."""
    limit = settings.PHOTO_UPLOAD_MAX_BYTES
    return filesizeformat(limit) if upload.size > limit else None


def looks_like_jpeg(data: bytes) -> bool:
    """Cheap test used to compare checksums before decoding anything."""
    return data.startswith(_JPEG_START)


def storable_image(data: bytes) -> bytes:
    """The bytes to store for an image file, after checking it is a sound, bounded image.

    Raises ``ImageProblem`` with a reason an admin understands ("broken image ...",
    "image too large ...", "unsupported image type ...").
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            if kind not in STORED_AS_IS | CONVERTED:
                raise ImageProblem(f"unsupported image type ({kind}); use JPEG, PNG or WebP")
            width, height = image.size
            if width * height > settings.IMAGE_MAX_PIXELS:
                raise ImageProblem(
                    f"image too large ({width}x{height} pixels, at most {settings.IMAGE_MAX_PIXELS} allowed)"
                )
            image.verify()
        if kind in STORED_AS_IS:
            data = jpeg_without_trailer(data)
        # verify() checks the structure only; decoding catches truncated pixel data.
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if kind in STORED_AS_IS:
                return data
            buffer = io.BytesIO()
            _rgb_on_white(image).save(buffer, "JPEG", quality=JPEG_QUALITY)
            return buffer.getvalue()
    except ImageProblem:
        raise
    except UnidentifiedImageError:
        raise ImageProblem("broken image (not an image file Pillow can read)") from None
    except Image.DecompressionBombError:
        raise ImageProblem(f"image too large (at most {settings.IMAGE_MAX_PIXELS} pixels allowed)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageProblem(f"broken image ({error})") from error


def jpeg_without_trailer(data: bytes) -> bytes:
    """A JPEG's bytes up to its end-of-image marker; unchanged when its markers cannot be
    followed (the decoder is the judge of those)."""
    end, position = len(data), 2
    while position + 4 <= end:
        if data[position] != 0xFF:
            return data
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:
            return data[: position + 2]
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            position += 2
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if length < 2:
            return data
        position += 2 + length
        if marker == 0xDA:  # compressed data runs to the next marker that is not FF00 or a restart
            while True:
                position = data.find(b"\xff", position)
                if position < 0 or position + 1 >= end:
                    return data
                following = data[position + 1]
                if following == 0xFF:
                    position += 1
                elif following == 0x00 or 0xD0 <= following <= 0xD7:
                    position += 2
                else:
                    break
    return data


def _rgb_on_white(image):
    # As recommender.embedding.preprocessing does for the model (neither may import the
    # other): 16-bit greyscale rescaled instead of clipped, transparent parts made white.
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float32)
        if values.size and values.max() > 255:
            values = values / 257.0
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE + (255,)), rgba).convert("RGB")
    return image.convert("RGB")
