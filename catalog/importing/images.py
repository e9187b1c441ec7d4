"""Checking catalogue images before they are stored.

Images are identified by their content, never by their file name: Pillow must recognise
and fully decode them, and their pixel count must stay under ``IMAGE_MAX_PIXELS``.
JPEGs are stored byte for byte; PNG and WebP photos are converted to JPEG so every stored
file really is what its ``.jpg`` name says.
"""

import io

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from PIL import Image, UnidentifiedImageError

from .errors import ImageProblem

STORED_AS_IS = {"JPEG"}
CONVERTED = {"PNG", "WEBP", "MPO"}
JPEG_QUALITY = 90
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
                raise ImageProblem(f"unsupported image type ({kind}); use JPEG")
            width, height = image.size
            if width * height > settings.IMAGE_MAX_PIXELS:
                raise ImageProblem(
                    f"image too large ({width}x{height} pixels, at most {settings.IMAGE_MAX_PIXELS} allowed)"
                )
            image.verify()
        # verify() checks the structure only; decoding catches truncated pixel data.
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if kind in STORED_AS_IS:
                return data
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY)
            return buffer.getvalue()
    except ImageProblem:
        raise
    except UnidentifiedImageError:
        raise ImageProblem("broken image (not an image file Pillow can read)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageProblem(f"broken image ({error})") from error
