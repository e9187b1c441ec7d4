"""Hostile and broken uploads, generated in code, with what the shop must do with each.

``UPLOADS`` is the table the upload tests are driven by: each kind says how the file is
sent (name, content type), whether the photo search must refuse it (a 4xx naming the
problem) or search with it, and whether the admin may store it as a product image.
"""

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tests.images import BLUE, RED, garment_photo, image_bytes

# Outcomes
SEARCHED = "searched"  # 200 with results
REFUSED = "refused"  # 4xx with the message
STORED = "stored"  # admin: saved as the product's image, a real JPEG
NOT_IMAGE = "This file is not an image we can read"
DAMAGED = "This image file is damaged or incomplete"
TOO_LARGE = "This image is too large"
EMPTY = "The submitted file is empty"


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_header(width, height, bit_depth=1, colour_type=0, extra_chunks=b""):
    """A PNG whose header claims ``width`` x ``height`` pixels, with a few bytes of pixel
    data: a decompression bomb's header without the bomb's cost."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + extra_chunks
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def png_bomb():
    return png_with_header(100_000, 100_000)


def jpeg_bomb():
    """A small JPEG whose frame header (SOF0) claims 65,000 x 65,000 pixels."""
    data = bytearray(image_bytes(size=(16, 16)))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 65_000, 65_000)  # height, width
    return bytes(data)


def gif_bomb():
    """A small GIF whose logical screen and frame claim 65,535 x 65,535 pixels."""
    data = bytearray(image_bytes(size=(16, 16), fmt="GIF"))
    struct.pack_into("<HH", data, 6, 65_535, 65_535)
    frame = data.index(b"\x2c")  # image descriptor
    struct.pack_into("<HH", data, frame + 5, 65_535, 65_535)
    return bytes(data)


def png_text_bomb():
    """A PNG with a compressed text chunk that inflates to 20 MB."""
    text = _png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * 20_000_000, 9))
    return png_with_header(8, 8, bit_depth=8, colour_type=0, extra_chunks=text)


def zero_width_png():
    return png_with_header(0, 10)


def bad_crc_png():
    data = bytearray(image_bytes(fmt="PNG"))
    data[29] ^= 0xFF  # last byte of IHDR's CRC
    return bytes(data)


def truncated_jpeg():
    return garment_photo(RED)[:600]


def text_file():
    return b"Just some notes, not a photo.\n" * 40


def svg_with_script():
    return (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        b'<script>alert(document.cookie)</script><rect width="100" height="100" fill="red"/></svg>'
    )


def html_page():
    return b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


def html_with_jpeg_magic():
    """HTML behind the first bytes of a JPEG, to fool checks that only read the magic number."""
    return b"\xff\xd8\xff\xe0" + html_page()


def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def jpeg_with_zip():
    """A valid JPEG with a zip archive appended: opens as either."""
    return garment_photo(BLUE) + _zip({"payload.html": html_page()})


def png_with_html():
    return garment_photo(BLUE, fmt="PNG") + html_page()


def eps_named_jpeg():
    """PostScript (Pillow opens it through Ghostscript), named and typed as a JPEG."""
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), RED).save(buffer, "EPS")
    return buffer.getvalue()


def icon_file():
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), RED).save(buffer, "ICO")
    return buffer.getvalue()


def animated_gif():
    frames = [Image.new("RGB", (80, 100), colour) for colour in (RED, BLUE, (30, 160, 60))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def sixteen_bit_png():
    values = np.full((80, 60), 30_000, dtype=np.uint16)
    values[10:70, 15:45] = 60_000  # a light garment on a mid-grey background
    image = Image.fromarray(values)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def exif_rotated_jpeg():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to view
    buffer = io.BytesIO()
    Image.new("RGB", (60, 120), RED).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def corrupt_exif_jpeg():
    """A JPEG whose EXIF block (APP1) holds a TIFF header pointing far past its end."""
    exif = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 0x7FFF_FFF0) + b"\xff" * 20
    segment = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    data = garment_photo(RED)
    return data[:2] + segment + data[2:]


def palette_png_with_transparency():
    image = Image.new("P", (60, 80), 0)
    image.putpalette([255, 0, 255] + list(RED) + [0] * (254 * 3))
    image.paste(1, (15, 10, 45, 70))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)  # magenta background, transparent
    return buffer.getvalue()


def greyscale_jpeg():
    return garment_photo(BLUE, mode="L")


def cmyk_jpeg():
    return garment_photo(BLUE, mode="CMYK")


def one_pixel_png():
    return image_bytes(size=(1, 1), fmt="PNG")


def tiff_file():
    return garment_photo(RED, fmt="TIFF", size=(120, 160))


def bmp_file():
    return garment_photo(RED, fmt="BMP", size=(120, 160))


def webp_file():
    return garment_photo(RED, fmt="WEBP")


def oversize_jpeg(limit):
    """A real JPEG padded (after its end) to one byte over ``limit``."""
    data = garment_photo(RED)
    return data + b"\0" * (limit + 1 - len(data))


# The size limit the upload tests set, so an oversize file stays small.
SIZE_LIMIT = 100_000


@dataclass(frozen=True)
class BadUpload:
    kind: str
    make: object  # () -> bytes
    name: str = "photo.jpg"
    content_type: str = "image/jpeg"
    search: str = REFUSED
    # For a refused upload: a part of the message the photo search shows (page and API).
    message: str = ""
    # What the admin's product form does with it as the product image.
    admin: str = REFUSED

    def data(self):
        return self.make()


UPLOADS = [
    BadUpload("empty file", lambda: b"", message=EMPTY),
    BadUpload("text renamed .jpg", text_file, message=NOT_IMAGE),
    BadUpload("text named .png, typed image/png", text_file, "photo.png", "image/png", message=NOT_IMAGE),
    BadUpload("truncated JPEG", truncated_jpeg, message=DAMAGED),
    BadUpload("PNG bomb (100,000 x 100,000 header)", png_bomb, "bomb.png", "image/png", message=TOO_LARGE),
    BadUpload("JPEG bomb (65,000 x 65,000 header)", jpeg_bomb, message=TOO_LARGE),
    BadUpload("GIF bomb (65,535 x 65,535 header)", gif_bomb, "bomb.gif", "image/gif", message=TOO_LARGE),
    BadUpload(
        "PNG over the pixel limit (8,000 x 6,000 header)",
        lambda: png_with_header(8_000, 6_000),
        "big.png",
        "image/png",
        message=TOO_LARGE + r" \(8000x6000 pixels\)",
    ),
    BadUpload("PNG text chunk bomb (20 MB inflated)", png_text_bomb, "t.png", "image/png", message=DAMAGED),
    BadUpload("PNG zero pixels wide", zero_width_png, "zero.png", "image/png", message=NOT_IMAGE),
    BadUpload("PNG with a broken checksum", bad_crc_png, "crc.png", "image/png", message=NOT_IMAGE),
    BadUpload("oversize in bytes", lambda: oversize_jpeg(SIZE_LIMIT), message="too large|larger than"),
    BadUpload("SVG with a script", svg_with_script, "photo.svg", "image/svg+xml", message=NOT_IMAGE),
    BadUpload("HTML page", html_page, "photo.html", "text/html", message=NOT_IMAGE),
    BadUpload("HTML behind a JPEG magic number", html_with_jpeg_magic, message=DAMAGED),
    BadUpload("EPS named .jpg (a Ghostscript format)", eps_named_jpeg, message=NOT_IMAGE),
    BadUpload("ICO named .jpg", icon_file, message=NOT_IMAGE),
    BadUpload("JPEG with a zip appended (polyglot)", jpeg_with_zip, search=SEARCHED, admin=STORED),
    BadUpload("PNG with HTML appended", png_with_html, "p.png", "image/png", search=SEARCHED, admin=STORED),
    BadUpload("animated GIF", animated_gif, "a.gif", "image/gif", search=SEARCHED),
    BadUpload("16-bit greyscale PNG", sixteen_bit_png, "g.png", "image/png", search=SEARCHED, admin=STORED),
    BadUpload("CMYK JPEG", cmyk_jpeg, search=SEARCHED, admin=STORED),
    BadUpload("EXIF-rotated JPEG", exif_rotated_jpeg, search=SEARCHED, admin=STORED),
    BadUpload("JPEG with a corrupt EXIF block", corrupt_exif_jpeg, search=SEARCHED, admin=STORED),
    BadUpload(
        "palette PNG with transparency",
        palette_png_with_transparency,
        "t.png",
        "image/png",
        search=SEARCHED,
        admin=STORED,
    ),
    BadUpload("greyscale JPEG", greyscale_jpeg, search=SEARCHED, admin=STORED),
    BadUpload("1x1 PNG", one_pixel_png, "dot.png", "image/png", search=SEARCHED, admin=STORED),
    BadUpload("TIFF", tiff_file, "photo.tiff", "image/tiff", search=SEARCHED),
    BadUpload("BMP", bmp_file, "photo.bmp", "image/bmp", search=SEARCHED),
    BadUpload("WebP named .jpg, typed image/jpeg", webp_file, search=SEARCHED, admin=STORED),
    BadUpload(
        "JPEG named ../../escape.jpg",
        lambda: garment_photo(RED),
        "../../escape.jpg",
        search=SEARCHED,
        admin=STORED,
    ),
    BadUpload(
        "JPEG with a 5,000-character name",
        lambda: garment_photo(RED),
        "x" * 5_000 + ".jpg",
        search=SEARCHED,
        admin=STORED,
    ),
    BadUpload(
        "PNG without extension, typed application/octet-stream",
        lambda: garment_photo(BLUE, fmt="PNG"),
        "photo",
        "application/octet-stream",
        search=SEARCHED,
        admin=STORED,
    ),
]

REFUSED_UPLOADS = [upload for upload in UPLOADS if upload.search == REFUSED]
SEARCHED_UPLOADS = [upload for upload in UPLOADS if upload.search == SEARCHED]
