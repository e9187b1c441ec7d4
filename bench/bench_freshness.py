"""Freshness: how long after a product is created (with its photo) it shows among the
similar items of a product that looks like it, with a real worker in services mode
(PostgreSQL, Redis, one Celery worker).

A catalogue of demo products is imported, embedded and indexed; then, one at a time,
a copy of a catalogue photo is saved as a new product (as the admin or the API saves
it) and ``similar_products`` of the original is polled until the copy is among them.
The copy is found before the next index build: searches merge vectors stored since.

    .venv/bin/python bench/bench_freshness.py [--products 200] [--new 10] [--quick]

Prints one JSON object (seconds).
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import log, rounded, start_services_mode, start_worker, stop

# Similar items looked at: a copy of a photo is the nearest, or ties with near-duplicates.
SHOWN = 10


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=200, help="demo catalogue size")
    parser.add_argument("--new", type=int, default=10, help="products created and timed")
    parser.add_argument("--database", default="storefront_bench_freshness")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--quick", action="store_true", help="60 products, 3 timed")
    args = parser.parse_args()
    if args.quick:
        args.products, args.new = 60, 3

    with tempfile.TemporaryDirectory(prefix="bench-freshness-") as tmp:
        tmp = Path(tmp)
        start_services_mode(tmp, args.database, args.redis_url)
        from django.core.files.base import ContentFile
        from django.core.management import call_command
        from django.db.models import Count

        from catalog.demo import import_demo_catalogue
        from catalog.models import Product
        from recommender.similar import similar_products

        import_demo_catalogue(args.products)
        call_command("embed_catalog", verbosity=0, stdout=sys.stderr)
        worker = start_worker(tmp)
        try:
            time.sleep(5)  # the worker starts and takes the tasks the import queued
            # Photos no other product has: a demo photo drawn twice would tie with the copy.
            unique = (
                Product.objects.exclude(image="")
                .values("image_checksum")
                .annotate(n=Count("pk"))
                .filter(n=1)
                .values("image_checksum")
            )
            originals = list(Product.objects.filter(image_checksum__in=unique).order_by("pk")[: args.new])
            first_id = Product.objects.order_by("-pk").first().pk + 1
            seconds = []
            for number, original in enumerate(originals):
                with original.image.open("rb") as handle:
                    photo = handle.read()
                started = time.perf_counter()
                copy = Product.objects.create(
                    pk=first_id + number,
                    name=f"Copy of {original.name}",
                    article_type=original.article_type,
                    base_colour=original.base_colour,
                    gender=original.gender,
                    price=original.price,
                    stock=5,
                    image=ContentFile(photo, name=f"{first_id + number}.jpg"),
                )
                while copy.pk not in [product.pk for product in similar_products(original, k=SHOWN)]:
                    if time.perf_counter() - started > 120:
                        raise SystemExit(f"product {copy.pk} was not similar to {original.pk} after 120 s")
                    time.sleep(0.05)
                seconds.append(time.perf_counter() - started)
                log(f"product {copy.pk}: similar after {seconds[-1]:.2f} s")
        finally:
            stop(worker)
    print(
        json.dumps(
            rounded(
                {
                    "catalogue": args.products,
                    "timed": len(seconds),
                    "median_seconds": statistics.median(seconds),
                    "max_seconds": max(seconds),
                    "seconds": seconds,
                }
            ),
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
