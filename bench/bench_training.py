"""Train the recommender on the real catalogue sample, end to end, and compare it with the
untrained default on the held-out fifth (and the held-out half of the shopper photos).

    .venv/bin/python bench/bench_training.py [--epochs 40] [--no-photos] [--scale 10]

Imports ../shared/datasets/fashion-small-dev into a fresh SQLite database, embeds it with
the real CNN, runs train_recommender (with ../shared/datasets/clothing-photos) and prints
JSON: the metrics of the new and the default version, training time, and the time for a
catalogue ``--scale`` times larger (the stored features repeated) when asked.
"""

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

from common import DATASETS, log, rounded, setup_django


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalogue", type=Path, default=DATASETS / "fashion-small-dev")
    parser.add_argument("--photos", type=Path, default=DATASETS / "clothing-photos")
    parser.add_argument("--no-photos", action="store_true")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--cache", type=Path, help="folder to keep model weights in between runs")
    parser.add_argument("--scale", type=int, default=0, help="also time training on N copies of the features")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        setup_django(tmp, args.cache)
        from django.conf import settings
        from django.core.management import call_command

        from recommender.embedding.head import HeadConfig, train_head
        from recommender.models import IndexBuild
        from recommender.refresh import rebuild_index
        from recommender.training import load_catalogue, train_recommender, training_set

        def index_figures(build):
            ann = Path(settings.INDEX_DIR) / build.file_name
            return {
                "dimensions": build.dimensions,
                "build_seconds": build.duration_seconds,
                "ann_bytes": ann.stat().st_size if ann.exists() else None,
            }

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        call_command("import_catalog", str(args.catalogue), verbosity=0)
        call_command("embed_catalog", "--no-index", verbosity=0, stdout=io.StringIO())
        embed_seconds = time.perf_counter() - started
        log(f"imported and embedded in {embed_seconds:.0f}s")
        default_build = index_figures(rebuild_index())
        config = HeadConfig() if args.epochs is None else HeadConfig(epochs=args.epochs)
        report = train_recommender(
            config=config, shopper_photos=None if args.no_photos else args.photos, progress=log
        )
        result = {
            "products": report.version.training_products + report.version.held_out_products,
            "held_out": report.version.held_out_products,
            "training_photos": report.version.training_photos,
            "import_and_embed_seconds": embed_seconds,
            "train_recommender_seconds": report.seconds,
            "activated": report.activated,
            "metrics": report.version.metrics,
            "index_default_space": default_build,
            "index_trained_space": index_figures(IndexBuild.objects.first()) if report.activated else None,
        }
        if report.version.weights_file:
            # The same version without the re-ranking by predicted article type.
            import dataclasses

            from recommender.search_space import version_space
            from recommender.training import evaluate, load_shopper_photos

            space = version_space(report.version)
            plain = dataclasses.replace(
                space,
                head=space.head.__class__(
                    space.head.arrays, space.head.classes, space.head.scale, rerank_weight=0.0
                ),
            )
            photos = None if args.no_photos else load_shopper_photos(args.photos)
            result["metrics_without_rerank"] = evaluate(plain, load_catalogue(), photos)
        if args.scale:
            import numpy as np

            data = training_set(load_catalogue(), None, config)
            big = type(data)(
                inputs=np.tile(data.inputs, (args.scale, 1)),
                labels={task: np.tile(values, args.scale) for task, values in data.labels.items()},
                classes=data.classes,
                type_targets=np.tile(data.type_targets, (args.scale, 1)),
                example_weights=np.tile(data.example_weights, args.scale),
            )
            started = time.perf_counter()
            train_head(big, config)
            result[f"head_training_seconds_at_{len(big)}_examples"] = time.perf_counter() - started
        print(json.dumps(rounded(result), indent=2))


if __name__ == "__main__":
    main()
