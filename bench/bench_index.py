"""Index build cost: the Annoy trees, the stored neighbour lists (Annoy per item before;
now exact blocked products, or candidates found in 256 leading directions and re-scored
exactly in the default space from 20,000 items on), and the index at 500,000 items.

1. Catalogue size (44,441 vectors: the real dev-sample ones plus noisy copies, as in
   bench/bench_similar.py), in two spaces: the untrained default space (CNN + colour,
   1,408-d, lists of 40) and a 256-d space of the trained head's size (a PCA projection
   of the same vectors, standing in for a trained version; lists cut from a pool of 80
   through a re-ranking callback, as a trained space does). For each: Annoy tree build
   (settings' n_trees), the stored lists by Annoy ``get_nns_by_item`` per item (the
   build's code before), by ``recommender.neighbour_lists`` as a build makes them and all
   exact (when the build reduces), and by scikit-learn's
   brute force (when installed), each list's recall@5 against exact search, and Annoy
   vector search (photo search) recall@5 and build time for several n_trees.
2. 500,000 vectors (same recipe) in the chosen space (``--large-space``): Annoy build
   time, file size, process RSS, ``get_nns_by_vector`` latency for 44 neighbours and its
   recall@5, exact numpy search latency, and the time of the stored lists (measured on a
   random subset and extrapolated as n^2, as the JSON says).

Timings on a shared machine are noisy: compare the numbers of one run with each other.
Prints one JSON object. ``--cache DIR`` reuses the dev sample's vectors that
bench/bench_quality.py and bench/bench_similar.py keep there.

    .venv/bin/python bench/bench_index.py [--cache /tmp/quality-cache] [--quick]
"""

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from common import DATASETS, catalogue_sample, every_list_exact, log, reduces, rounded, setup_django

CATALOGUE_SIZE = 44_441
LARGE_SIZE = 500_000
TRAINED_DIMENSIONS = 256
# What the product page asks the index for (see bench/bench_similar.py).
PAGE_COUNT = 44


def grown_vectors(evaluation, sample, size, weight, projection=None, seed=0, chunk=50_000):
    """Search vectors of a synthetic catalogue of ``size`` (``evaluation.synthetic_catalogue``),
    grown in chunks so the float64 noise never needs more than a chunk's memory."""
    import numpy as np

    from recommender.embedding.vector_math import l2_normalise
    from recommender.vector_store import search_vectors

    parts, done = [], 0
    while done < size:
        if done == 0:  # the real vectors first, as bench/bench_similar.py grows them
            cnn, colour = evaluation.synthetic_catalogue(sample, min(size, chunk), seed=seed)
        else:  # then only noisy copies
            extra = min(chunk, size - done)
            cnn, colour = evaluation.synthetic_catalogue(sample, len(sample) + extra, seed=seed + done)
            cnn, colour = cnn[len(sample) :], colour[len(sample) :]
        part = search_vectors(cnn, colour, weight)
        parts.append(part if projection is None else l2_normalise(part @ projection))
        done += len(part)
    return np.ascontiguousarray(np.concatenate(parts)[:size], dtype=np.float32)


def pca_projection(sample, weight, dimensions):
    """The ``dimensions`` principal axes of the real sample's search vectors."""
    import numpy as np

    vectors = sample.search_vectors(weight)
    _, _, axes = np.linalg.svd(vectors - vectors.mean(axis=0), full_matrices=False)
    return np.ascontiguousarray(axes[:dimensions].T, dtype=np.float32)


def identity_rerank(items, candidates, similarities):
    """A re-ranking that keeps the order: the pool and the callback cost of a trained space."""
    assert candidates.dtype.kind == "i" and similarities.dtype == "float32"
    return candidates


def build_annoy(vectors, n_trees, path, jobs=1):
    """An Annoy file as annoy_index.write_build makes it; (index, seconds, bytes)."""
    from annoy import AnnoyIndex

    started = time.perf_counter()
    index = AnnoyIndex(vectors.shape[1], "angular")
    for item, vector in enumerate(vectors):
        index.add_item(item, vector.tolist())  # as the build adds rows (a list per row)
    index.build(n_trees, n_jobs=jobs)
    index.save(str(path))
    return index, time.perf_counter() - started, path.stat().st_size


def loaded(index, vectors):
    """A LoadedIndex over an AnnoyIndex whose item i is row i (for quality.evaluation)."""
    import numpy as np

    from recommender.annoy_index import LoadedIndex

    return LoadedIndex(
        build_id=0,
        model_name="bench",
        dimensions=vectors.shape[1],
        vectors_until=None,
        annoy=index,
        product_ids=np.arange(len(vectors)),
        positions={},
        neighbours=np.empty((len(vectors), 0), dtype=np.int32),
        metadata={},
    )


def list_recall(lists, vectors, queries, kth):
    """Recall@5 of stored lists, counted as quality.evaluation.stored_neighbours_recall does."""
    import numpy as np

    shares = []
    for position, row in enumerate(queries):
        found = [item for item in lists[row][:5] if item >= 0]
        similarity = vectors[found] @ vectors[row]
        shares.append(np.sum(similarity >= kth[position] - 1e-5) / 5)
    return float(np.mean(shares))


def sklearn_lists(vectors, pool):
    """The same lists by scikit-learn's brute-force cosine search (None when not installed)."""
    try:
        from sklearn.neighbors import NearestNeighbors
    except ImportError:
        return None
    started = time.perf_counter()
    search = NearestNeighbors(n_neighbors=pool + 1, metric="cosine", algorithm="brute").fit(vectors)
    _, found = search.kneighbors(vectors)
    seconds = time.perf_counter() - started
    # Each row finds itself first (distance 0), unless an identical photo comes first.
    lists = [[item for item in row if item != own][:pool] for own, row in enumerate(found)]
    return lists, seconds


def catalogue_size(evaluation, vectors, name, rerank, folder, args):
    """Everything at 44k in one space."""
    import numpy as np
    from django.conf import settings

    from recommender import annoy_index
    from recommender.neighbour_lists import annoy_neighbour_lists, nearest_neighbour_lists

    n, width = len(vectors), annoy_index.PRECOMPUTED_NEIGHBOURS
    pool = min(width * (annoy_index.RERANK_POOL_FACTOR if rerank else 1), n - 1)
    queries = np.random.default_rng(1).choice(n, min(args.queries, n), replace=False)
    kth = evaluation.exact_kth_similarity(vectors, queries)
    result = {"items": n, "dimensions": int(vectors.shape[1]), "list_pool": pool}

    log(f"{name}: annoy trees")
    index, seconds, size = build_annoy(vectors, settings.ANNOY_N_TREES, folder / f"{name}.ann")
    result["annoy_build"] = {"n_trees": settings.ANNOY_N_TREES, "seconds": seconds, "file_mb": size / 2**20}
    log(f"{name}: new lists")
    started = time.perf_counter()
    new = nearest_neighbour_lists(vectors, width, rerank=rerank, pool_factor=annoy_index.RERANK_POOL_FACTOR)
    result["lists_built"] = {
        "method": "reduced candidates, exact re-scoring" if reduces(vectors) else "exact",
        "seconds": time.perf_counter() - started,
        "recall_at_5": list_recall(new, vectors, queries, kth),
    }
    log(f"{name}: {result['lists_built']}")
    if reduces(vectors):
        log(f"{name}: exact lists")
        started = time.perf_counter()
        with every_list_exact():
            exact = nearest_neighbour_lists(
                vectors, width, rerank=rerank, pool_factor=annoy_index.RERANK_POOL_FACTOR
            )
        result["lists_all_exact"] = {
            "seconds": time.perf_counter() - started,
            "recall_at_5": list_recall(exact, vectors, queries, kth),
        }
        log(f"{name}: {result['lists_all_exact']}")
    log(f"{name}: old lists")
    if not args.skip_old:
        started = time.perf_counter()
        old = annoy_neighbour_lists(
            index, n, width, settings.ANNOY_SEARCH_K, rerank, pool_factor=annoy_index.RERANK_POOL_FACTOR
        )
        result["lists_annoy_per_item"] = {
            "search_k": settings.ANNOY_SEARCH_K,
            "seconds": time.perf_counter() - started,
            "recall_at_5": list_recall(old, vectors, queries, kth),
        }
        log(f"{name}: {result['lists_annoy_per_item']}")
    log(f"{name}: scikit-learn")
    found = sklearn_lists(vectors, pool)
    if found is None:
        result["lists_sklearn_brute"] = "scikit-learn is not installed"
    else:
        lists, seconds = found
        result["lists_sklearn_brute"] = {
            "seconds": seconds,
            "recall_at_5": list_recall(lists, vectors, queries, kth),
        }
    result["build_before_seconds"] = result["annoy_build"]["seconds"] + result.get(
        "lists_annoy_per_item", {}
    ).get("seconds", float("nan"))
    result["build_after_seconds"] = result["annoy_build"]["seconds"] + result["lists_built"]["seconds"]
    index.unload()

    sweep = []
    for n_trees in args.n_trees:
        index, seconds, size = build_annoy(vectors, n_trees, folder / f"{name}-{n_trees}.ann")
        row = {"n_trees": n_trees, "build_seconds": seconds, "file_mb": size / 2**20}
        row["build_seconds_2_jobs"] = build_annoy(
            vectors, n_trees, folder / f"{name}-{n_trees}-2.ann", jobs=2
        )[1]
        for search_k in (settings.ANNOY_SEARCH_K, 3 * settings.ANNOY_SEARCH_K):
            recall = evaluation.index_recall(
                loaded(index, vectors), vectors, queries, kth, search_k, count=PAGE_COUNT
            )
            row[f"vector_recall_at_5_search_k_{search_k}"] = recall
        sweep.append(row)
        log(f"{name}: {row}")
        index.unload()
    result["annoy_n_trees"] = sweep
    return result


def rss_mb():
    """(current, peak) resident memory of this process in MB."""
    current = 0.0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def large_index(evaluation, sample, weight, projection, folder, args):
    """The Annoy index and the exact lists at ``args.large`` items."""
    import numpy as np
    from django.conf import settings

    from recommender import annoy_index
    from recommender.neighbour_lists import nearest_neighbour_lists

    n = args.large
    log(f"large: {n} vectors")
    vectors = grown_vectors(evaluation, sample, n, weight, projection, seed=7)
    rng = np.random.default_rng(2)
    result = {"items": n, "dimensions": int(vectors.shape[1]), "vectors_mb": vectors.nbytes / 2**20}
    result["rss_mb_before_build"] = rss_mb()[0]
    index, seconds, size = build_annoy(vectors, settings.ANNOY_N_TREES, folder / "large.ann", jobs=args.jobs)
    current, peak = rss_mb()
    result["annoy_build"] = {
        "n_trees": settings.ANNOY_N_TREES,
        "n_jobs": args.jobs,
        "seconds": seconds,
        "file_mb": size / 2**20,
        "rss_mb_after": current,
        "peak_rss_mb": peak,
    }
    log(f"large: {result['annoy_build']}")
    index.unload()
    from annoy import AnnoyIndex

    index = AnnoyIndex(vectors.shape[1], "angular")
    index.load(str(folder / "large.ann"))  # mapped, as a web process serves it
    queries = rng.choice(n, args.queries, replace=False)
    for query in queries[:20]:  # page the file in
        index.get_nns_by_vector(vectors[query], PAGE_COUNT, search_k=settings.ANNOY_SEARCH_K)
    timings = []
    for query in queries:
        started = time.perf_counter()
        index.get_nns_by_vector(vectors[query], PAGE_COUNT, search_k=settings.ANNOY_SEARCH_K)
        timings.append(1000 * (time.perf_counter() - started))
    kth = evaluation.exact_kth_similarity(vectors, queries)
    result["vector_search"] = {
        "search_k": settings.ANNOY_SEARCH_K,
        "count": PAGE_COUNT,
        "queries": len(queries),
        "p50_ms": statistics.median(timings),
        "p99_ms": float(np.percentile(timings, 99)),
        "recall_at_5": evaluation.index_recall(
            loaded(index, vectors), vectors, queries, kth, settings.ANNOY_SEARCH_K, count=PAGE_COUNT
        ),
        "rss_mb_loaded": rss_mb()[0],
    }
    exact = []
    for query in queries[:50]:
        started = time.perf_counter()
        similarity = vectors @ vectors[query]
        top = np.argpartition(-similarity, PAGE_COUNT)[:PAGE_COUNT]
        top[np.argsort(-similarity[top])]
        exact.append(1000 * (time.perf_counter() - started))
    result["exact_numpy_search"] = {"queries": len(exact), "p50_ms": statistics.median(exact)}
    log(f"large: {result['vector_search']} {result['exact_numpy_search']}")
    items = rng.choice(n, 500, replace=False)
    started = time.perf_counter()
    for item in items:
        index.get_nns_by_item(
            int(item), annoy_index.PRECOMPUTED_NEIGHBOURS + 1, search_k=settings.ANNOY_SEARCH_K
        )
    per_item = (time.perf_counter() - started) / len(items)
    result["lists_annoy_per_item"] = {
        "measured_items": len(items),
        "ms_per_item": 1000 * per_item,
        "extrapolated_seconds": per_item * n,
    }
    index.unload()
    subset = min(args.large_subset, n)
    rows = np.sort(rng.choice(n, subset, replace=False))
    started = time.perf_counter()
    nearest_neighbour_lists(vectors[rows], annoy_index.PRECOMPUTED_NEIGHBOURS)
    seconds = time.perf_counter() - started
    result["lists_by_products"] = {
        "method": "reduced candidates, exact re-scoring" if reduces(vectors[rows]) else "exact",
        "measured_on_items": subset,
        "measured_seconds": seconds,
        "extrapolated_seconds": seconds * (n / subset) ** 2,
        "note": "run on a random subset of the items; the cost grows as n^2",
    }
    log(f"large: {result['lists_by_products']}")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", type=Path, default=DATASETS / "fashion-small-dev")
    parser.add_argument("--cache", type=Path, help="folder with (or for) the dev sample's vectors")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a run under a minute")
    parser.add_argument("--size", type=int, default=CATALOGUE_SIZE)
    parser.add_argument("--large", type=int, default=LARGE_SIZE)
    parser.add_argument("--large-space", choices=("default", "trained"), default="default")
    parser.add_argument("--large-subset", type=int, default=60_000, help="items the 500k lists are timed on")
    parser.add_argument("--jobs", type=int, default=1, help="Annoy build threads at 500k (the build uses 1)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--n-trees", default="10,20,30,50")
    parser.add_argument("--spaces", default="default,trained")
    parser.add_argument("--skip-old", action="store_true", help="leave out the Annoy per-item lists (slow)")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.size, args.large, args.large_subset, args.queries = 5_000, 20_000, 5_000, 200
        args.n_trees = "10,50"
    args.n_trees = [int(n) for n in args.n_trees.split(",")]

    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        tmp = Path(tmp)
        setup_django(tmp, args.cache)
        from django.conf import settings

        from quality import evaluation

        sample, _ = catalogue_sample(args.catalogue, args.cache)
        weight = settings.COLOUR_WEIGHT
        projection = pca_projection(sample, weight, TRAINED_DIMENSIONS)
        report = {
            "threads": os.cpu_count(),
            "annoy_n_trees": settings.ANNOY_N_TREES,
            "annoy_search_k": settings.ANNOY_SEARCH_K,
            "command": "bench/bench_index.py" + (" --quick" if args.quick else ""),
        }
        spaces = {"default": (None, None), "trained": (projection, identity_rerank)}
        for name in filter(None, args.spaces.split(",")):  # --spaces "": the large index alone
            space_projection, rerank = spaces[name]
            vectors = grown_vectors(evaluation, sample, args.size, weight, space_projection)
            report[f"catalogue_{name}_space"] = catalogue_size(evaluation, vectors, name, rerank, tmp, args)
            del vectors
        if not args.skip_large:
            large_projection = projection if args.large_space == "trained" else None
            report[f"large_{args.large_space}_space"] = large_index(
                evaluation, sample, weight, large_projection, tmp, args
            )
    print(json.dumps(rounded(report), indent=2))


if __name__ == "__main__":
    main()
