"""Benchmark: product photo thumbnails on the real catalogue sample.

Imports photos of the fashion-small-dev sample (thumbnails not made on import), then
times ``make_missing_thumbnails`` over them: photos per second, each read from storage,
checked against its checksum, decoded, resized to every width and written as WebP. Then
renders product pages (photo and similar items) and catalogue pages and adds up the bytes
of the images they link, full photos against thumbnails at 1x and 2x (the srcset variant
a high-density screen takes). The sample's photos are small (60x80), so the same is done
on some of them enlarged to 2400x3200 with noise, as real catalogues deliver photos.
Prints one JSON object.

    python bench/bench_thumbnails.py [--images 4395] [--large 40] [--pages 20] [--quick]
"""

import argparse
import io
import json
import re
import resource
import shutil
import tempfile
import time
from html import unescape
from pathlib import Path

from common import DATASETS, log, rounded, setup_django

SAMPLE = DATASETS / "fashion-small-dev"
LARGE_SIZE = (2400, 3200)


def sample_catalogue(folder, count):
    """styles.csv with the sample's first ``count`` products that have a photo, and those photos."""
    lines = (SAMPLE / "styles.csv").read_text(encoding="utf-8").splitlines()
    (folder / "images").mkdir(parents=True)
    kept = [lines[0]]
    for line in lines[1:]:
        photo = SAMPLE / "images" / f"{line.split(',', 1)[0]}.jpg"
        if photo.exists():
            kept.append(line)
            shutil.copyfile(photo, folder / "images" / photo.name)
        if len(kept) > count:
            break
    (folder / "styles.csv").write_text("\n".join(kept) + "\n", encoding="utf-8")
    return len(kept) - 1


def enlarged(data, seed):
    """A sample photo at the size real catalogues deliver: enlarged, with sensor noise."""
    import numpy as np
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB").resize(LARGE_SIZE, Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).normal(0, 6, (LARGE_SIZE[1], LARGE_SIZE[0], 1))
    pixels = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def import_without_thumbnails(folder):
    import catalog.importing.service as importing
    from catalog.importing import import_catalogue
    from catalog.signals import products_imported

    products_imported.send = lambda sender, **kwargs: []  # no embedding: not measured here
    queue = importing.queue_thumbnails
    importing.queue_thumbnails = lambda product_ids: None
    try:
        return import_catalogue(folder)
    finally:
        importing.queue_thumbnails = queue


def timed_thumbnails(products):
    from catalog.models import Product
    from catalog.thumbnails import make_missing_thumbnails

    started = time.perf_counter()
    report = make_missing_thumbnails(products)
    Product.objects.record_thumbnails(report.ready)
    seconds = time.perf_counter() - started
    return {
        "made": report.made,
        "failed": report.failed,
        "seconds": seconds,
        "photos_per_second": report.made / seconds if seconds else None,
    }


def image_bytes(url):
    from django.conf import settings

    path = unescape(url).split("?")[0].split(f"/{settings.MEDIA_URL.strip('/')}/", 1)[1]
    return (Path(settings.MEDIA_ROOT) / path).stat().st_size


def page_images(html, img_class, section):
    """(src, srcset) of the photos with this class in the part of a page after ``section``."""
    html = html[html.index(section) :] if section in html else ""
    found = []
    for tag in re.findall(rf'<img class="{img_class}"[^>]*>', html):
        srcset = re.search(r' srcset="([^"]*)"', tag)
        found.append((re.search(r' src="([^"]*)"', tag).group(1), srcset.group(1) if srcset else ""))
    return found


def page_bytes(client, urls, full_url_of, img_class, section):
    """Bytes the photos of a kind cost on these pages: full photos, thumbnails at 1x and 2x."""
    full = one = two = images = 0
    for url in urls:
        for src, srcset in page_images(client.get(url).content.decode(), img_class, section):
            assert srcset, f"{url}: an image without thumbnails ({src})"
            images += 1
            full += image_bytes(full_url_of[re.search(r"thumbnails/([0-9a-f]{64})/", src).group(1)])
            one += image_bytes(srcset.split(", ")[0].split()[0])
            two += image_bytes(srcset.split(", ")[-1].split()[0])
    return {
        "pages": len(urls),
        "images": images,
        "full_bytes_per_page": full / len(urls),
        "thumbnail_1x_bytes_per_page": one / len(urls),
        "thumbnail_2x_bytes_per_page": two / len(urls),
        "ratio_2x_to_full": two / full if full else None,
    }


def measure(client, products, pages):
    """Bytes of the product pages' photo and similar items, and of catalogue pages' cards."""
    from django.conf import settings
    from django.urls import reverse

    full_url_of = {p.image_checksum: p.image_url for p in products}
    product_urls = [p.get_absolute_url() for p in products[:pages]]
    list_pages = max(1, min(pages, len(products) // settings.CATALOG_PAGE_SIZE))
    list_urls = [f"{reverse('catalog:product_list')}?page={n}" for n in range(1, list_pages + 1)]
    return {
        "product_photo": page_bytes(
            client, product_urls, full_url_of, "product__image", '<article class="product">'
        ),
        "similar_items": page_bytes(
            client, product_urls, full_url_of, "product-card__image", '<section class="similar"'
        ),
        "catalogue_page": page_bytes(
            client, list_urls, full_url_of, "product-card__image", '<div class="product-grid">'
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4395, help="sample photos to import")
    parser.add_argument("--large", type=int, default=40, help="sample photos enlarged to 2400x3200")
    parser.add_argument("--pages", type=int, default=20, help="product pages and catalogue pages rendered")
    parser.add_argument("--quick", action="store_true", help="500 photos, 8 large, 5 pages (under a minute)")
    args = parser.parse_args()
    if args.quick:
        args.images, args.large, args.pages = 500, 8, 5
    if not (SAMPLE / "styles.csv").exists():
        raise SystemExit(f"The catalogue sample is not at {SAMPLE}")

    with tempfile.TemporaryDirectory(prefix="bench-thumbnails-") as tmp:
        tmp = Path(tmp)
        setup_django(tmp)
        from django.core.management import call_command
        from django.test import Client

        from catalog.models import Product

        call_command("migrate", verbosity=0)
        client = Client(HTTP_HOST="localhost")

        log(f"Importing {args.images} sample photos")
        count = sample_catalogue(tmp / "sample", args.images)
        import_without_thumbnails(tmp / "sample")
        products = list(Product.objects.with_photo().order_by("pk"))
        log(f"Making the thumbnails of {len(products)} photos")
        sample_rate = timed_thumbnails(products)
        log("Rendering pages")
        sample_pages = measure(client, products, args.pages)

        log(f"Enlarging {args.large} photos to {LARGE_SIZE[0]}x{LARGE_SIZE[1]}")
        large_folder = tmp / "large"
        (large_folder / "images").mkdir(parents=True)
        chosen = products[: args.large]
        for seed, product in enumerate(chosen):
            with product.image.open("rb") as file:
                (large_folder / "images" / f"{product.pk}.jpg").write_bytes(enlarged(file.read(), seed))
        styles = (tmp / "sample" / "styles.csv").read_text(encoding="utf-8").splitlines()
        wanted = {str(p.pk) for p in chosen}
        kept = [styles[0]] + [line for line in styles[1:] if line.split(",", 1)[0] in wanted]
        (large_folder / "styles.csv").write_text("\n".join(kept) + "\n", encoding="utf-8")
        import_without_thumbnails(large_folder)
        large = list(Product.objects.filter(pk__in=[p.pk for p in chosen]).order_by("pk"))
        log(f"Making the thumbnails of {len(large)} large photos")
        large_rate = timed_thumbnails(large)
        # Only the enlarged products stay buyable, so pages show them (and their similar items).
        Product.objects.exclude(pk__in=[p.pk for p in large]).update(is_active=False)
        from django.core.cache import cache

        cache.clear()  # catalogue counts
        large_pages = measure(client, large, args.pages)

    print(
        json.dumps(
            rounded(
                {
                    "sample": {"photos": count, "size": "60x80", **sample_rate, **sample_pages},
                    "large": {
                        "photos": len(large),
                        "size": f"{LARGE_SIZE[0]}x{LARGE_SIZE[1]}",
                        **large_rate,
                        **large_pages,
                    },
                    "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                }
            )
        )
    )


if __name__ == "__main__":
    main()
