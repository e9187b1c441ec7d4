"""End-to-end photo search latency through the API (Django test client, one process):
upload, decode, crop, CNN, search in the active space, re-rank, serialise; and its parts
(decode and preparation, the model, the colour signature, the search and its queries).

    .venv/bin/python bench/bench_photo_search.py [--products 240] [--repeats 60]

Builds a demo catalogue, embeds it, trains and activates a version (so the trained
head and its re-ranking are on the path), then times searches with and without a crop
box on a 1200x1600 JPEG. Prints JSON (milliseconds).
"""

import argparse
import io
import json
import statistics
import tempfile
import time

from common import log, rounded, setup_django


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=240)
    parser.add_argument("--repeats", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-photo-") as tmp:
        setup_django(tmp)
        from django.core.cache import cache
        from django.core.management import call_command
        from PIL import Image, ImageDraw
        from rest_framework.test import APIClient

        from catalog.demo import import_demo_catalogue
        from recommender.embedding.head import HeadConfig
        from recommender.training import train_recommender

        call_command("migrate", verbosity=0)
        import_demo_catalogue(args.products)
        call_command("embed_catalog", verbosity=0, stdout=io.StringIO())
        report = train_recommender(config=HeadConfig(epochs=20))
        log(f"version {report.version.pk} activated: {report.activated}")

        image = Image.new("RGB", (1200, 1600), (230, 225, 215))
        ImageDraw.Draw(image).rounded_rectangle((250, 200, 950, 1400), radius=80, fill=(40, 70, 160))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        photo = buffer.getvalue()
        client = APIClient(HTTP_HOST="localhost")

        def search(**crop):
            cache.clear()  # the photo-search throttle counts in the cache
            upload = io.BytesIO(photo)
            upload.name = "photo.jpg"
            started = time.perf_counter()
            response = client.post("/api/search/image", {"image": upload, **crop}, format="multipart")
            assert response.status_code == 200, response.content
            return (time.perf_counter() - started) * 1000

        result = {"products": args.products, "trained_version_active": report.activated}
        crop = {"crop_x": "0.15", "crop_y": "0.1", "crop_width": "0.7", "crop_height": "0.8"}
        for name, options in (("whole_photo", {}), ("with_crop", crop)):
            search(**options)  # first call traces the graph
            times = sorted(search(**options) for _ in range(args.repeats))
            result[name] = {
                "median_ms": statistics.median(times),
                "p95_ms": times[int(len(times) * 0.95) - 1],
            }
        result["parts_ms"] = parts(photo, args.repeats)
        print(json.dumps(rounded(result), indent=2))


def parts(photo, repeats):
    """Median milliseconds of each step of a search, run one after the other."""
    from recommender import active_model
    from recommender.embedding import colour_descriptor
    from recommender.photo_search import PhotoQuery, search_with

    embedder = active_model.get_embedder()
    times = {"decode_and_prepare": [], "model": [], "colour_signature": [], "search_and_rows": []}
    for _ in range(repeats):
        started = time.perf_counter()
        array = active_model.prepare_photo(photo)
        prepared = time.perf_counter()
        cnn = embedder.embed_one(array)
        embedded = time.perf_counter()
        colour = colour_descriptor(array)
        coloured = time.perf_counter()
        search_with(PhotoQuery(cnn=cnn, colour=colour))
        searched = time.perf_counter()
        for name, seconds in zip(
            times, (prepared - started, embedded - prepared, coloured - embedded, searched - coloured)
        ):
            times[name].append(seconds * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


if __name__ == "__main__":
    main()
