"""Catalogue embedding speed on the real dev photos: the bare model against the pipeline
that reads, prepares and embeds photos, one step after the other and overlapped.

Measured side by side in one run, in rounds that alternate the order, on the converted
(LiteRT) model the shop runs:

- ``bare``: ``embed_images`` on photos decoded beforehand (the same batch size);
- ``serial``: ``embed_photo_files`` preparing each batch in turn with the model;
- ``overlapped``: ``embed_photo_files`` preparing the next batches in a thread meanwhile;
- ``refresh``: ``recommender.refresh.embed_products`` end to end (storage, checksums,
  SQLite writes) on the dev catalogue imported into a temporary database, both ways.

A grid of interpreter threads x preparing threads (on fewer photos) shows what to run on
this machine. Seconds for the full catalogue (44,441 products) are extrapolated from the
photos per second measured here. Prints one JSON object; ``--keras`` adds the Keras model's
load, tracing and forward pass times.

    .venv/bin/python bench/bench_embed.py [--quick] [--images 4395] [--rounds 3] [--keras]
"""

import argparse
import functools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import DATASETS, ROOT, log, rounded, setup_django

FULL_CATALOGUE = 44_441
BATCH_SIZE = 64
# Photos decoded once for the bare model; longer runs cycle through them.
DECODED_PHOTOS = 1024


def per_second(count, function, *args, **kwargs):
    """``count`` divided by the seconds ``function(*args, **kwargs)`` takes."""
    started = time.perf_counter()
    function(*args, **kwargs)
    return count / (time.perf_counter() - started)


def bare_model(embedder, decoded, count, batch_size=BATCH_SIZE):
    """Run the model on ``count`` already prepared photos, batch after batch."""
    for start in range(0, count, batch_size):
        rows = [decoded[position % len(decoded)] for position in range(start, min(start + batch_size, count))]
        embedder.embed_images(rows, batch_size=batch_size)


def side_by_side(modes, rounds):
    """Photos per second of each mode, each round running every mode (in a rotated order)."""
    rates = {name: [] for name in modes}
    names = list(modes)
    for round_number in range(rounds):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in order:
            rates[name].append(modes[name]())
            log(f"round {round_number + 1}: {name} {rates[name][-1]:.1f} photos/s")
    return rates


def summary(rates, count):
    median = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "photos": count,
        "photos_per_second": median,
        "rounds": rates,
        "overlapped_over_bare": median["overlapped"] / median["bare"],
        "serial_over_bare": median["serial"] / median["bare"],
        # The same ratio within each round: less exposed to other load on a shared machine.
        "overlapped_over_bare_per_round": [o / b for o, b in zip(rates["overlapped"], rates["bare"])],
        "full_catalogue_seconds": {
            name: FULL_CATALOGUE / rate for name, rate in median.items() if name != "bare"
        },
    }


def thread_grid(model_path, name, dim, paths, decoded):
    """Photos per second for interpreter threads x preparing threads."""
    from recommender.active_model import embed_photo_files
    from recommender.embedding.litert_model import LiteRTEmbedder

    grid = {}
    for interpreter_threads in (1, 2):
        embedder = LiteRTEmbedder(name, dim, model_path, threads=interpreter_threads)
        embedder.embed_images(decoded[:BATCH_SIZE], batch_size=BATCH_SIZE)
        count = len(paths)
        row = {"bare": per_second(count, bare_model, embedder, decoded, count)}
        for threads in (0, 1, 2):
            row[f"preparing_threads_{threads}"] = per_second(
                count, embed_photo_files, paths, embedder, batch_size=BATCH_SIZE, threads=threads
            )
        row["model_batch_16_bare"] = per_second(count, bare_model, embedder, decoded, count, batch_size=16)
        grid[f"interpreter_threads_{interpreter_threads}"] = row
        log(f"grid, interpreter threads {interpreter_threads}: {rounded(row)}")
    return grid


def dev_subset(tmp, catalogue, count):
    """A catalogue folder with the first ``count`` rows of ``catalogue`` (photos linked)."""
    folder = Path(tmp) / "catalogue"
    folder.mkdir()
    lines = (catalogue / "styles.csv").read_bytes().splitlines(keepends=True)
    (folder / "styles.csv").write_bytes(b"".join(lines[: count + 1]))
    (folder / "images").symlink_to(catalogue / "images", target_is_directory=True)
    return folder


def refresh_end_to_end(folder, rounds):
    """``embed_products`` on every imported product, one step after the other and overlapped."""
    from django.core.management import call_command

    from catalog.importing import import_catalogue
    from catalog.models import Product
    from catalog.signals import products_imported
    from recommender import refresh
    from recommender.embedding import pipeline
    from recommender.models import Embedding

    call_command("migrate", verbosity=0)
    products_imported.send = lambda sender, **kwargs: []  # embed here, not from the import
    started = time.perf_counter()
    import_catalogue(folder)
    import_seconds = time.perf_counter() - started
    ids = list(Product.objects.exclude(image="").values_list("pk", flat=True))
    log(f"imported {len(ids)} products with a photo in {import_seconds:.1f}s")
    overlapped = refresh.embed_photo_batches
    serial = functools.partial(pipeline.embed_photo_batches, threads=0)
    reports = {}

    def run(kind, batches):
        def measure():
            Embedding.objects.all().delete()
            refresh.embed_photo_batches = batches
            try:
                started = time.perf_counter()
                reports[kind] = refresh.embed_products(ids).as_dict()
                return len(ids) / (time.perf_counter() - started)
            finally:
                refresh.embed_photo_batches = overlapped

        return measure

    refresh.embed_products(ids[:BATCH_SIZE])  # load the model outside the timings
    rates = side_by_side(
        {"serial": run("serial", serial), "overlapped": run("overlapped", overlapped)}, rounds
    )
    median = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "products": len(ids),
        "import_seconds": import_seconds,
        "products_per_second": median,
        "rounds": rates,
        "overlapped_over_serial": median["overlapped"] / median["serial"],
        "full_catalogue_seconds": {name: FULL_CATALOGUE / rate for name, rate in median.items()},
        "report": {**reports["overlapped"], "failed": len(reports["overlapped"]["failed"])},
        "same_report_both_ways": reports["overlapped"] == reports["serial"],
    }


def keras_timings(repeats=20):
    """The Keras model (what the LiteRT file is converted from): load, tracing, forward pass."""
    from recommender.embedding import efficientnet_lite
    from recommender.embedding.backend import load_tensorflow
    from recommender.embedding.embedder import KerasEmbedder

    def timed(function, times):
        samples = []
        for _ in range(times):
            started = time.perf_counter()
            function()
            samples.append((time.perf_counter() - started) * 1000)
        return statistics.median(samples)

    results = {}
    started = time.perf_counter()
    load_tensorflow()
    results["tensorflow_import_s"] = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench-models-") as cache_dir:
        started = time.perf_counter()
        efficientnet_lite.load_efficientnet_lite0(include_top=True, cache_dir=cache_dir)
        results["first_load_with_conversion_s"] = time.perf_counter() - started
        started = time.perf_counter()
        model = efficientnet_lite.load_efficientnet_lite0(include_top=True, cache_dir=cache_dir)
        results["cached_load_s"] = time.perf_counter() - started
    features = efficientnet_lite.feature_extractor(model)
    embedder = KerasEmbedder("efficientnet_lite0", 1280, features, efficientnet_lite.preprocess_input)
    images = np.random.default_rng(0).integers(0, 256, (16, 224, 224, 3), dtype=np.uint8)
    started = time.perf_counter()
    embedder.embed_one(images[0])
    results["first_call_with_tracing_s"] = time.perf_counter() - started
    embedder.embed_images(images, batch_size=16)
    results["tf_function_batch1_ms_per_image"] = timed(lambda: embedder.embed_one(images[0]), repeats)
    batch_ms = timed(lambda: embedder.embed_images(images, batch_size=16), max(3, repeats // 4))
    results["tf_function_batch16_ms_per_image"] = batch_ms / 16
    return results


def preparation_timings(repeats=20):
    """Milliseconds to prepare one photo (a catalogue thumbnail, a phone photo) and its colours."""
    import io

    from PIL import Image

    from recommender.embedding import colour_descriptor, prepare_image

    def jpeg(width, height):
        pixels = np.full((height, width, 3), 255, dtype=np.uint8)
        pixels[height // 8 : -height // 8, width // 6 : -width // 6] = (180, 40, 60)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
        return buffer.getvalue()

    def ms(function, times):
        started = time.perf_counter()
        for _ in range(times):
            function()
        return (time.perf_counter() - started) * 1000 / times

    thumbnail, phone = jpeg(60, 80), jpeg(3000, 4000)
    prepared = prepare_image(thumbnail)
    return {
        "prepare_image_60x80_jpeg_ms": ms(lambda: prepare_image(thumbnail), repeats * 10),
        "prepare_image_3000x4000_jpeg_ms": ms(lambda: prepare_image(phone), repeats),
        "colour_descriptor_ms": ms(lambda: colour_descriptor(prepared), repeats * 10),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", type=Path, default=DATASETS / "fashion-small-dev")
    parser.add_argument("--images", type=int, help="photos to embed (default: all; 512 with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds of every mode (default 3; 1 with --quick)")
    parser.add_argument("--grid-images", type=int, default=768, help="photos per cell of the thread grid")
    parser.add_argument("--quick", action="store_true", help="a short run: fewer photos, one round, no grid")
    parser.add_argument("--keras", action="store_true", help="also time the Keras model (imports TensorFlow)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    load_at_start = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        # The converted model of this checkout (made by prepare_model), if there is one.
        if (ROOT / "var" / "models").is_dir():
            (data_dir / "models").symlink_to(ROOT / "var" / "models", target_is_directory=True)
        setup_django(tmp, data_dir)
        from recommender import active_model
        from recommender.embedding import pipeline

        paths = sorted((args.catalogue / "images").glob("*.jpg"), key=lambda path: int(path.stem))
        paths = paths[: args.images or (512 if args.quick else None)]
        embedder = active_model.get_embedder()
        log(f"{len(paths)} photos, model {embedder.path.name}")
        decoded = [active_model.prepare_photo(path) for path in paths[:DECODED_PHOTOS]]
        embedder.embed_images(decoded[:BATCH_SIZE], batch_size=BATCH_SIZE)

        def pipeline_rate(threads):
            return lambda: per_second(
                len(paths),
                lambda: active_model.embed_photo_files(
                    paths, embedder, batch_size=BATCH_SIZE, threads=threads
                ),
            )

        rates = side_by_side(
            {
                "bare": lambda: per_second(len(paths), lambda: bare_model(embedder, decoded, len(paths))),
                "serial": pipeline_rate(0),
                "overlapped": pipeline_rate(pipeline.PREPARING_THREADS),
            },
            rounds,
        )
        results = {
            "model": embedder.path.name,
            "interpreter_threads": len(os.sched_getaffinity(0)),  # what the shop's loader picks
            "preparing_threads": pipeline.PREPARING_THREADS,
            "batch_size": BATCH_SIZE,
            "photo_files": summary(rates, len(paths)),
            "preparation": preparation_timings(),
        }
        if not args.quick:
            grid_paths = paths[: args.grid_images]
            results["thread_grid"] = {
                "photos": len(grid_paths),
                **thread_grid(embedder.path, embedder.name, embedder.dim, grid_paths, decoded),
            }
        subset = dev_subset(tmp, args.catalogue, len(paths)) if args.images or args.quick else args.catalogue
        results["refresh_embed_products"] = refresh_end_to_end(subset, rounds)
        if args.keras:
            results["keras"] = keras_timings()

    # Other work on the machine slows every mode; the ratios within a round hold up best.
    results["load_average_1min"] = {"start": load_at_start, "end": os.getloadavg()[0]}
    print(json.dumps(rounded(results), indent=2))


if __name__ == "__main__":
    main()
