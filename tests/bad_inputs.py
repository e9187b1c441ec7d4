"""Hostile and broken input, generated in code, with what the shop must do with each.

``UPLOADS`` drives the upload tests: each kind says how the file is sent (name, content
type), whether the photo search must refuse it (a 4xx naming the problem) or search with
it, and whether the admin may store it as a product image. ``STYLES_FILES`` and the
archive makers below are broken catalogues for the importer. ``files_under`` and
``row_counts`` check that a bad input left nothing behind.
"""

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
from django.apps import apps
from PIL import Image

from tests.catalog_files import STYLES_HEADER, styles_line, zip_bytes
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


def jpeg_with_zip():
    """A valid JPEG with a zip archive appended: opens as either."""
    return garment_photo(BLUE) + zip_bytes({"payload.html": html_page()})


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


# Broken styles.csv files


def styles_text(*lines, header=STYLES_HEADER):
    return "\n".join([header, *lines]) + "\n"


@dataclass(frozen=True)
class BrokenStyles:
    """A styles.csv and what the import makes of it: the ids kept and the rejected rows
    (line -> part of the reason), or the whole file refused (part of the message)."""

    kind: str
    make: object  # () -> bytes
    kept: tuple = ()
    rejected: dict = None
    refused: str = ""


GOOD = styles_text(styles_line(1), styles_line(2), styles_line(3))
BAD_NUMBERS = [
    # (styles.csv line without price/stock, price, stock, part of the reason)
    (styles_line(10, year="2012.5"), "", "", "year '2012.5' is not a whole number"),
    (styles_line(11, year="99999"), "", "", "year 99999 is outside"),
    (styles_line(12), "NaN", "", "price 'NaN' must be between"),
    (styles_line(13), "Infinity", "", "price 'Infinity' must be between"),
    (styles_line(14), "1e400", "", "price '1e400' must be between"),
    (styles_line(15), "-0.01", "", "price '-0.01' must be between"),
    (styles_line(16), "1_000", "", "price '1_000' is not a number"),
    (styles_line(17), "", "1.5", "stock '1.5' is not a whole number"),
    (styles_line(18), "", "-3", "stock '-3' is not a whole number"),
    (styles_line("1.0"), "", "", "id '1.0' is not a whole number"),
    (styles_line("\u0661\u0662"), "", "", "is not a whole number"),  # Arabic-Indic digits
    (styles_line("99999999999"), "", "", "id 99999999999 is outside"),
    (styles_line("abc"), "", "", "id 'abc' is not a whole number"),
    (styles_line(""), "", "", "id is empty"),
]


def _bad_numbers():
    lines = [styles_line(1) + ",9.99,4"]
    lines += [f"{line},{price},{stock}" for line, price, stock, _ in BAD_NUMBERS]
    lines.append(styles_line(2) + ",,")
    return styles_text(*lines, header=STYLES_HEADER + ",price,stock").encode()


STYLES_FILES = [
    BrokenStyles(
        "latin-1",
        lambda: styles_text(styles_line(1), styles_line(2, name="Caf\xe9 Shirt"), styles_line(3)).encode(
            "latin-1"
        ),
        kept=(1, 3),
        rejected={3: "not UTF-8 text (byte 0xe9 at position"},
    ),
    BrokenStyles(
        "Windows-1252 curly quotes",
        lambda: styles_text(styles_line(1), styles_line(2, name="\u201cSmart\u201d Shirt")).encode("cp1252"),
        kept=(1,),
        rejected={3: "not UTF-8 text (byte 0x93"},
    ),
    BrokenStyles("UTF-8 with a byte order mark", lambda: GOOD.encode("utf-8-sig"), kept=(1, 2, 3)),
    BrokenStyles("UTF-16 with a byte order mark", lambda: GOOD.encode("utf-16"), refused="UTF-16"),
    BrokenStyles("UTF-16 big-endian, no byte order mark", lambda: GOOD.encode("utf-16-be"), refused="UTF-16"),
    BrokenStyles("UTF-32", lambda: GOOD.encode("utf-32"), refused="UTF-32"),
    BrokenStyles("Windows line endings", lambda: GOOD.replace("\n", "\r\n").encode(), kept=(1, 2, 3)),
    BrokenStyles("old Mac line endings", lambda: GOOD.replace("\n", "\r").encode(), kept=(1, 2, 3)),
    BrokenStyles("tab-separated", lambda: GOOD.replace(",", "\t").encode(), refused="separated by tabs"),
    BrokenStyles("semicolon-separated", lambda: GOOD.replace(",", ";").encode(), refused="semicolons"),
    BrokenStyles("a JPEG named styles.csv", lambda: garment_photo(RED), refused="not a text file"),
    BrokenStyles(
        "a zip named styles.csv",
        lambda: zip_archive({"styles.csv": GOOD.encode()}),
        refused="is a zip archive, not a CSV file",
    ),
    BrokenStyles("empty", lambda: b"", refused="empty"),
    BrokenStyles("header only", lambda: styles_text().encode()),
    BrokenStyles(
        "no id column",
        lambda: b"name,gender\nTee,Men\n",
        refused="lacks the required column(s) id, productDisplayName",
    ),
    BrokenStyles(
        "a column named twice", lambda: b"id,id,productDisplayName\n1,2,Tee\n", refused="'id' twice"
    ),
    BrokenStyles(
        "too few columns",
        lambda: styles_text(styles_line(1), "5,Men,Apparel", styles_line(2)).encode(),
        kept=(1, 2),
        rejected={3: "has 3 fields, the header names 10"},
    ),
    BrokenStyles(
        "too many columns: the extra cell lands in a number column",
        lambda: styles_text("1,Tee,9.99", "2,Tee,9.99,extra", header="id,productDisplayName,price").encode(),
        kept=(1,),
        rejected={3: "price 'extra' is not a number"},
    ),
    BrokenStyles(
        "duplicate ids",
        lambda: styles_text(styles_line(1), styles_line(2), styles_line(1, name="Again")).encode(),
        kept=(1, 2),
        rejected={4: "id 1 appears again (first on line 2)"},
    ),
    BrokenStyles(
        "bad numbers",
        _bad_numbers,
        kept=(1, 2),
        rejected={line: reason for line, (*_, reason) in enumerate(BAD_NUMBERS, start=3)},
    ),
    BrokenStyles(
        "a zero byte in a row",
        lambda: (
            styles_text(*[styles_line(i) for i in range(1, 40)]) + styles_line(40, name="Nul\0Tee")
        ).encode(),
        kept=tuple(range(1, 40)),
        rejected={41: "contains a zero byte"},
    ),
    BrokenStyles(
        "a name longer than the column",
        lambda: styles_text(styles_line(1, name="N" * 256), styles_line(2)).encode(),
        kept=(2,),
        rejected={2: "productDisplayName is longer than 255 characters"},
    ),
    BrokenStyles(
        "a row of commas only",
        lambda: styles_text(",,,,,,,,,", styles_line(1)).encode(),
        kept=(1,),
        rejected={2: "id is empty"},
    ),
]


# Zip archives: written by zipfile, then damaged where a test needs it

# Fields of a central directory record: (offset, struct format).
DIRECTORY_FIELDS = {
    "version_needed": (6, "<H"),
    "flags": (8, "<H"),
    "method": (10, "<H"),
    "compressed_size": (20, "<I"),
    "size": (24, "<I"),
    "external_attr": (38, "<I"),
}


def zip_archive(members, compression=zipfile.ZIP_DEFLATED):
    """A zip archive of ``{name: bytes}``, members in that order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _directory_record(data, name):
    """The offset of ``name``'s record in the archive's central directory."""
    start = struct.unpack_from("<I", data, len(data) - 6)[0]  # no archive comment
    encoded = name.encode()
    while data[start : start + 4] == b"PK\x01\x02":
        name_length, extra, comment = struct.unpack_from("<HHH", data, start + 28)
        if data[start + 46 : start + 46 + name_length] == encoded:
            return start
        start += 46 + name_length + extra + comment
    raise KeyError(name)


def with_directory_fields(data, name, **fields):
    """The archive with fields of ``name``'s central directory record overwritten: the
    record zipfile trusts for sizes, method, flags and file type."""
    data = bytearray(data)
    record = _directory_record(bytes(data), name)
    for field, value in fields.items():
        offset, fmt = DIRECTORY_FIELDS[field]
        struct.pack_into(fmt, data, record + offset, value)
    return bytes(data)


def with_directory_name(data, name, raw_name):
    """The archive with ``name`` spelt as the bytes ``raw_name`` (same length) in its
    central directory."""
    data = bytearray(data)
    record = _directory_record(bytes(data), name)
    data[record + 46 : record + 46 + len(raw_name)] = raw_name
    return bytes(data)


def with_damaged_data(data, name):
    """The archive with the compressed bytes of ``name`` scrambled."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(name)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data = bytearray(data)
    for position in range(start, start + min(info.compress_size, 64)):
        data[position] ^= 0x5A
    return bytes(data)


def end_records_only(entries, directory_size):
    """Nothing but the records that end a zip64 archive, claiming ``entries`` entries in a
    directory of ``directory_size`` bytes: what a zip bomb's reader sees first."""
    zip64_end = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, entries, entries, directory_size, 0)
    locator = struct.pack("<IIQI", 0x07064B50, 0, 0, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return zip64_end + locator + end


# Checks that a bad input left nothing behind


def files_under(*folders):
    """Every file under the folders (the SQLite test database aside: queries change it)."""
    return {
        path
        for folder in folders
        if folder.exists()
        for path in folder.rglob("*")
        if path.is_file() and not path.name.startswith("test.sqlite3")
    }


def row_counts():
    """Rows in every table, by model."""
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}
