"""Embedding speed: model load (conversion vs cache), forward pass per batch size, and
the image preparation and colour signature around it. Prints one JSON object.

    .venv/bin/python bench/bench_embed.py [--repeats 20]
"""

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


def timed(function, repeats):
    """Median wall time of ``function()`` in milliseconds."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples), 2)


def jpeg_bytes(width, height, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = np.full((height, width, 3), 255, dtype=np.uint8)
    pixels[height // 8 : -height // 8, width // 6 : -width // 6] = rng.integers(0, 255, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    import django

    django.setup()
    from recommender.embedding import colour_descriptor, efficientnet_lite, prepare_image
    from recommender.embedding.backend import load_tensorflow
    from recommender.embedding.embedder import KerasEmbedder

    results = {"repeats": args.repeats}
    start = time.perf_counter()
    load_tensorflow()
    results["tensorflow_import_s"] = round(time.perf_counter() - start, 2)

    with tempfile.TemporaryDirectory(prefix="bench-models-") as cache_dir:
        # An empty cache folder forces the conversion from the PyTorch file.
        start = time.perf_counter()
        efficientnet_lite.load_efficientnet_lite0(include_top=True, cache_dir=cache_dir)
        results["first_load_with_conversion_s"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        model = efficientnet_lite.load_efficientnet_lite0(include_top=True, cache_dir=cache_dir)
        results["cached_load_s"] = round(time.perf_counter() - start, 2)

    features = efficientnet_lite.feature_extractor(model)
    embedder = KerasEmbedder("efficientnet_lite0", 1280, features, efficientnet_lite.preprocess_input)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 224, 224, 3), dtype=np.uint8)

    start = time.perf_counter()
    embedder.embed_one(images[0])
    results["first_call_with_tracing_s"] = round(time.perf_counter() - start, 2)
    embedder.embed_images(images, batch_size=16)

    repeats = args.repeats
    results["tf_function_batch1_ms_per_image"] = timed(lambda: embedder.embed_one(images[0]), repeats)
    batch_ms = timed(lambda: embedder.embed_images(images, batch_size=16), max(3, repeats // 4))
    results["tf_function_batch16_ms_per_image"] = round(batch_ms / 16, 2)
    single = efficientnet_lite.preprocess_input(images[:1].astype(np.float32))
    features.predict(single, verbose=0)
    results["model_predict_batch1_ms_per_image"] = timed(lambda: features.predict(single, verbose=0), repeats)

    catalogue_jpeg = jpeg_bytes(60, 80)
    phone_jpeg = jpeg_bytes(3000, 4000)
    results["prepare_image_60x80_jpeg_ms"] = timed(lambda: prepare_image(catalogue_jpeg), repeats)
    results["prepare_image_3000x4000_jpeg_ms"] = timed(lambda: prepare_image(phone_jpeg), repeats)
    prepared = prepare_image(catalogue_jpeg)
    results["colour_descriptor_ms"] = timed(lambda: colour_descriptor(prepared), repeats * 10)

    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
