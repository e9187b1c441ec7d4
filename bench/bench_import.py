"""Benchmark: import a catalogue the size of the full dataset (44,441 rows).

Generates a synthetic catalogue in a temporary folder, in the raw styles.csv format with
its quirks (bare commas in names, NA cells) and small JPEGs for a subset of the rows,
imports it into a fresh SQLite database, then imports it again (every row unchanged).
Prints one JSON object: rows, seconds and rows_per_second of the first import, the same
for the re-import, and the counts the importer reported.

    python bench/bench_import.py [--rows 44441] [--images 5000] [--with-listeners]

By default the ``products_imported`` listeners (image embedding) are muted: this measures
the import itself; embedding has its own benchmark.
"""

import argparse
import io
import json
import random
import resource
import tempfile
import time
from pathlib import Path

from common import setup_django

HEADER = "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName"
KINDS = [
    ("Apparel", "Topwear", "Tshirts"),
    ("Apparel", "Topwear", "Shirts"),
    ("Apparel", "Topwear", "Kurtas"),
    ("Apparel", "Bottomwear", "Jeans"),
    ("Apparel", "Bottomwear", "Trousers"),
    ("Apparel", "Dress", "Dresses"),
    ("Footwear", "Shoes", "Casual Shoes"),
    ("Footwear", "Shoes", "Sports Shoes"),
    ("Footwear", "Flip Flops", "Flip Flops"),
    ("Accessories", "Watches", "Watches"),
    ("Accessories", "Bags", "Handbags"),
    ("Accessories", "Headwear", "Caps"),
    ("Personal Care", "Lips", "Lipstick"),
    ("Personal Care", "Fragrance", "Perfume and Body Mist"),
]
COLOURS = ["Black", "White", "Blue", "Navy Blue", "Red", "Green", "Grey", "Pink", "Brown", "NA"]
BRANDS = ["Peter England", "Nike", "Puma", "Fastrack", "Lakme", "Turtle", "Levis", "Titan"]


def write_catalogue(folder, rows, images, seed=7):
    """A synthetic styles.csv + images/ with ``rows`` products, ``images`` of them with a picture."""
    from PIL import Image

    rng = random.Random(seed)
    lines = [HEADER]
    for index in range(rows):
        master, sub, article = rng.choice(KINDS)
        colour = rng.choice(COLOURS)
        gender = rng.choice(["Men", "Women", "Unisex"])
        name = f"{rng.choice(BRANDS)} {gender} {colour} {article} {index}"
        if index % 200 == 0:
            name += ", Gift Set"  # the raw file's bare commas
        usage = "NA" if index % 97 == 0 else rng.choice(["Casual", "Formal", "Sports"])
        season = rng.choice(["Summer", "Fall", "Winter", "Spring"])
        lines.append(
            f"{index + 1},{gender},{master},{sub},{article},{colour},{season},{rng.randint(2009, 2019)},"
            f"{usage},{name}"
        )
    (folder / "styles.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    image_folder = folder / "images"
    image_folder.mkdir()
    for product_id in rng.sample(range(1, rows + 1), min(images, rows)):
        buffer = io.BytesIO()
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        Image.new("RGB", (60, 80), colour).save(buffer, "JPEG", quality=85)
        (image_folder / f"{product_id}.jpg").write_bytes(buffer.getvalue())


def timed_import(folder):
    from catalog.importing import import_catalogue

    started = time.perf_counter()
    report = import_catalogue(folder)
    return report, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=44_441)
    parser.add_argument("--images", type=int, default=5_000, help="rows that get a small JPEG")
    parser.add_argument("--with-listeners", action="store_true", help="let products_imported listeners run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        tmp = Path(tmp)
        setup_django(tmp)
        from django.core.management import call_command

        from catalog.importing import service as importing_service
        from catalog.signals import products_imported

        call_command("migrate", verbosity=0)
        if not args.with_listeners:
            # The import alone: no embedding or thumbnails (they run eagerly in a bench).
            products_imported.send = lambda sender, **kwargs: []
            importing_service.queue_thumbnails = lambda product_ids: None
        folder = tmp / "catalogue"
        folder.mkdir()
        write_catalogue(folder, args.rows, args.images)

        first, seconds = timed_import(folder)
        again, reimport_seconds = timed_import(folder)

    print(
        json.dumps(
            {
                "rows": args.rows,
                "images": min(args.images, args.rows),
                "seconds": round(seconds, 2),
                "rows_per_second": round(args.rows / seconds),
                "reimport_seconds": round(reimport_seconds, 2),
                "reimport_rows_per_second": round(args.rows / reimport_seconds),
                "created": first.created,
                "rejected": first.rejected,
                "without_image": first.without_image,
                "reimport_unchanged": again.unchanged,
                "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
