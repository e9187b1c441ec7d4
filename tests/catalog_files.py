"""Small catalogues on disk or in a zip: styles.csv lines, images/<id>.jpg, stored photos."""

import io
import zipfile

from tests.images import image_bytes

STYLES_HEADER = (
    "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName"
)


def styles_line(product_id, name="Blue Tee", article_type="Tshirts", colour="Blue", year="2012", **overrides):
    """One raw styles.csv line in the dataset's column order."""
    cells = {
        "id": str(product_id),
        "gender": "Men",
        "masterCategory": "Apparel",
        "subCategory": "Topwear",
        "articleType": article_type,
        "baseColour": colour,
        "season": "Summer",
        "year": year,
        "usage": "Casual",
        **overrides,
    }
    return ",".join([*cells.values(), name])


def write_catalogue(folder, lines, images=(), header=STYLES_HEADER, encoding="utf-8"):
    """Write ``folder``/styles.csv and images/<id>.jpg; ``images`` maps id -> bytes (or lists ids)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join([header, *lines]) + "\n"
    (folder / "styles.csv").write_bytes(text.encode(encoding))
    image_folder = folder / "images"
    image_folder.mkdir(exist_ok=True)
    if not isinstance(images, dict):
        images = {product_id: image_bytes() for product_id in images}
    for product_id, data in images.items():
        (image_folder / f"{product_id}.jpg").write_bytes(data)
    return folder


def zip_bytes(members):
    """A zip archive of ``{name: bytes}``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def stored_files(media_root):
    """Names of the files under media/products/."""
    folder = media_root / "products"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def raw_zip_bytes(members):
    """A stored (uncompressed) zip archive of ``{name: bytes}`` written by hand, so names
    the zipfile module refuses to write (an empty one) can be tested."""
    import struct
    import zlib

    local, central, offset = b"", b"", 0
    for name, data in members.items():
        encoded, crc = name.encode(), zlib.crc32(data)
        header = struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(data), len(data), len(encoded), 0
        )
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                0,
                0,
                0,
                crc,
                len(data),
                len(data),
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )
        record = header + encoded + data
        local += record
        offset += len(record)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    return local + central + end
