"""Similar-products speed and the Annoy index's recall against exact search.

1. Dev sample (4,395 real search vectors at settings.COLOUR_WEIGHT): for each n_trees,
   build time and file size; for each search_k, recall@5 against exact search and the
   time per query, asking for 6 neighbours (5 + the product itself) and for 44 (what the
   product page asks for, so out-of-stock products can be skipped).
2. Catalogue size (44,441 vectors: the real ones plus noisy copies) with the settings'
   ANNOY_N_TREES / ANNOY_SEARCH_K: build time, file size, get_nns_by_item time, recall.
3. End to end: ``rebuild_index`` on a fresh SQLite database of 44,441 products, with
   every stored list exact and as the build makes them, then ``similar_products``.

Prints one JSON object. ``--cache DIR`` reuses the vectors bench/bench_quality.py keeps
there (or computes and keeps them); nothing is written into the repository.

    .venv/bin/python bench/bench_similar.py [--cache /tmp/quality-cache] [--skip-database]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import DATASETS, catalogue_sample, every_list_exact, log, rounded, setup_django

CATALOGUE_SIZE = 44_441
# 5 similar products + the product itself; and products_near's first request for k=5.
COUNTS = (6, 44)


def recall_table(evaluation, vectors, folder, n_trees_options, search_k_options, queries):
    """Recall and time for every n_trees x search_k x count on the given vectors."""
    kth = evaluation.exact_kth_similarity(vectors, queries)
    builds, rows = [], []
    for build_id, n_trees in enumerate(n_trees_options, start=1):
        loaded, seconds, size = evaluation.scratch_index(folder, vectors, n_trees, build_id=build_id)
        builds.append({"n_trees": n_trees, "build_seconds": seconds, "file_mb": size / 2**20})
        for search_k in search_k_options:
            for count in COUNTS:
                row = {
                    "n_trees": n_trees,
                    "search_k": search_k,
                    "count": count,
                    "recall": evaluation.index_recall(loaded, vectors, queries, kth, search_k, count=count),
                    "get_nns_by_item_ms": evaluation.item_lookup_ms(loaded, queries, count, search_k),
                }
                rows.append(row)
                log(str(row))
        loaded.annoy.unload()
    return builds, rows


def scale_test(evaluation, sample, colour_weight, n_trees, search_k, folder, queries_count, seed=0):
    """Build an index the size of the full catalogue and time lookups in it."""
    import numpy as np

    from recommender.vector_store import search_vectors

    cnn, colour = evaluation.synthetic_catalogue(sample, CATALOGUE_SIZE, seed=seed)
    vectors = search_vectors(cnn, colour, colour_weight)
    loaded, seconds, size = evaluation.scratch_index(folder, vectors, n_trees)
    rng = np.random.default_rng(seed)
    queries = rng.choice(len(vectors), queries_count, replace=False)
    kth = evaluation.exact_kth_similarity(vectors, queries)
    result = {
        "items": len(vectors),
        "n_trees": n_trees,
        "search_k": search_k,
        "build_seconds": seconds,
        "file_mb": size / 2**20,
        "queries": queries_count,
    }
    result["stored_neighbours"] = {
        "recall_at_5": evaluation.stored_neighbours_recall(loaded, vectors, queries, kth),
        "lookup_ms": evaluation.stored_lookup_ms(loaded, queries),
    }
    for count in COUNTS:
        result[f"count_{count}"] = {
            "recall_at_5": evaluation.index_recall(loaded, vectors, queries, kth, search_k, count=count),
            "get_nns_by_item_ms": evaluation.item_lookup_ms(loaded, queries, count, search_k),
        }
    loaded.annoy.unload()
    return result, cnn, colour


def end_to_end(cnn, colour, samples, seed=0):
    """Time rebuild_index and similar_products on a database of len(cnn) products."""
    import numpy as np
    from django.core.management import call_command
    from django.utils import timezone

    from catalog.models import Product
    from recommender import annoy_index
    from recommender.embedding import VECTOR_RECIPE
    from recommender.models import Embedding
    from recommender.refresh import rebuild_index
    from recommender.similar import similar_products
    from recommender.vector_store import current_model_name

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    ids = range(1, len(cnn) + 1)
    Product.objects.bulk_create(
        (Product(id=pk, name=f"Product {pk}", article_type="Tshirts", price=10, stock=5) for pk in ids),
        batch_size=2000,
    )
    now = timezone.now()
    model_name = current_model_name()
    Embedding.objects.bulk_create(
        (
            Embedding(
                product_id=pk,
                model_name=model_name,
                recipe=VECTOR_RECIPE,
                checksum="bench",
                cnn=cnn[pk - 1].tobytes(),
                colour=colour[pk - 1].tobytes(),
                updated_at=now,
            )
            for pk in ids
        ),
        batch_size=1000,
    )
    fill_seconds = time.perf_counter() - started
    # Side by side: with every stored list exact (what builds did before), then as built.
    with every_list_exact():
        exact_build = rebuild_index()
    build = rebuild_index()
    annoy_index.forget_loaded_index()

    rng = np.random.default_rng(seed)
    products = list(Product.objects.filter(pk__in=rng.choice(ids, samples + 5, replace=False).tolist()))
    for product in products[:5]:  # load the index, warm caches
        similar_products(product)
    timings = []
    for product in products[5:]:
        started = time.perf_counter()
        found = similar_products(product)
        timings.append((time.perf_counter() - started) * 1000)
        if len(found) != 5 or product in found:
            raise RuntimeError(f"similar_products({product.pk}) returned {found}")
    timings.sort()
    return {
        "products": len(cnn),
        "database_fill_seconds": fill_seconds,
        "rebuild_index_seconds": build.duration_seconds,
        "rebuild_index_seconds_every_list_exact": exact_build.duration_seconds,
        "similar_products_calls": len(timings),
        "similar_products_median_ms": statistics.median(timings),
        "similar_products_p95_ms": timings[int(len(timings) * 0.95) - 1],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", type=Path, default=DATASETS / "fashion-small-dev")
    parser.add_argument("--cache", type=Path, help="folder with (or for) the dev sample's vectors")
    parser.add_argument("--n-trees", default="5,10,20,50")
    parser.add_argument("--search-k", default="-1,500,1000,2000,5000,10000")
    parser.add_argument("--scale-queries", type=int, default=1000)
    parser.add_argument("--e2e-calls", type=int, default=300, help="similar_products calls to time")
    parser.add_argument("--skip-database", action="store_true", help="leave out the end-to-end part")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-similar-") as tmp:
        tmp = Path(tmp)
        setup_django(tmp, args.cache)
        import numpy as np
        from django.conf import settings

        from quality import evaluation

        sample, _ = catalogue_sample(args.catalogue, args.cache)
        weight = settings.COLOUR_WEIGHT
        vectors = sample.search_vectors(weight)
        builds, table = recall_table(
            evaluation,
            vectors,
            tmp / "dev-index",
            [int(n) for n in args.n_trees.split(",")],
            [int(k) for k in args.search_k.split(",")],
            np.arange(len(vectors)),
        )
        log("building the catalogue-size index")
        scale, cnn, colour = scale_test(
            evaluation,
            sample,
            weight,
            settings.ANNOY_N_TREES,
            settings.ANNOY_SEARCH_K,
            tmp / "scale-index",
            args.scale_queries,
        )
        report = {
            "colour_weight": weight,
            "dev_sample": {"items": len(vectors), "builds": builds, "recall_at_5": table},
            "catalogue_size": scale,
        }
        if not args.skip_database:
            log("filling a database of catalogue size")
            report["end_to_end"] = end_to_end(cnn, colour, args.e2e_calls)
    print(json.dumps(rounded(report), indent=2))


if __name__ == "__main__":
    main()
