"""Visual search quality on real data: the catalogue sample and real shopper photos.

1. Catalogue (leave-one-out, exact search): P@5 "same article type" and "same type and
   colour" for each colour weight, and the best weight meeting the floors
   (0.70 / 0.27).
2. Shopper photos searched against the catalogue sample: P@5 "right kind of product"
   overall and per label, for each colour weight (1.0 = colour histogram alone,
   0 = CNN alone), adults' clothes and, separately, with children's clothes included.

Prints one JSON object. Embedding the 4,395 catalogue photos takes a minute or two;
``--cache DIR`` keeps the vectors (and the converted model weights) in DIR so later runs
skip the CNN (delete DIR after changing the embedder or the colour signature).

    .venv/bin/python bench/bench_quality.py [--cache /tmp/quality-cache]
"""

import argparse
import json
import tempfile
from pathlib import Path

from common import DATASETS, catalogue_sample, log, rounded, setup_django


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", type=Path, default=DATASETS / "fashion-small-dev")
    parser.add_argument("--photos", type=Path, default=DATASETS / "clothing-photos")
    parser.add_argument(
        "--weights",
        default="0,0.025,0.05,0.065,0.075,0.1,0.2,0.3,0.4,0.5,0.6",
        help="colour weights to compare",
    )
    parser.add_argument("--cache", type=Path, help="folder to keep vectors and model weights in")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        data_dir = args.cache or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        setup_django(tmp, data_dir)
        from django.conf import settings

        from quality import evaluation

        weights = [float(weight) for weight in args.weights.split(",")]
        catalogue, catalogue_seconds = catalogue_sample(args.catalogue, args.cache)
        photos, photo_seconds = evaluation.cached_sample(
            args.cache and args.cache / "shopper-photos.npz",
            lambda: evaluation.embed_shopper_photos(
                args.photos, include_kids=True, progress=lambda done: log(f"shopper photos: {done}")
            ),
        )

        sweep = evaluation.colour_weight_sweep(catalogue, weights)
        chosen = evaluation.choose_colour_weight(sweep)
        shipped = settings.COLOUR_WEIGHT
        compared = sorted(set(weights) | {0.0, 1.0, shipped} | ({chosen} if chosen is not None else set()))
        adults = photos.subset(~photos.labels["kids"])
        photo_results = {
            str(weight): evaluation.shopper_photo_precision(adults, catalogue, weight) for weight in compared
        }
        with_kids = {
            str(weight): evaluation.shopper_photo_precision(photos, catalogue, weight)["overall"]
            for weight in compared
        }

    report = {
        "catalogue": {
            "products": len(catalogue),
            "embedding_seconds": catalogue_seconds,
            "leave_one_out_p_at_5": sweep,
            "chosen_colour_weight": chosen,
            "shipped_colour_weight": shipped,
            "shipped": evaluation.leave_one_out_precision(catalogue, shipped),
        },
        "shopper_photos": {
            "photos_adults": len(adults),
            "photos_with_kids": len(photos),
            "embedding_seconds": photo_seconds,
            "p_at_5_adults": {weight: result["overall"] for weight, result in photo_results.items()},
            "p_at_5_with_kids": with_kids,
            "per_label_adults": {
                label: {
                    "photos": photo_results[str(compared[0])]["per_label"][label]["queries"],
                    **{
                        weight: result["per_label"][label]["p_at_k"]
                        for weight, result in photo_results.items()
                    },
                }
                for label in photo_results[str(compared[0])]["per_label"]
            },
        },
    }
    print(json.dumps(rounded(report), indent=2))


if __name__ == "__main__":
    main()
