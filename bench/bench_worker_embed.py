"""An imported catalogue embedded by one Celery worker, end to end, in services mode
(PostgreSQL, Redis, one worker process of concurrency 1).

The real dev sample is imported with its photos and grown to ``--products`` products
with copies that share its photo files, none with vectors yet, as an import leaves them.
Then the worker starts, and once it answers, the sweep queues every product (as after an
import). Timed from then: until every product has vectors (``embedded_seconds``) and until
an index build holds them all (``searchable_seconds``), with the index builds the worker
ran meanwhile (spaced out by INDEX_REBUILD_SPACING, never back to back).

    .venv/bin/python bench/bench_worker_embed.py [--products 44441] [--quick]

Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379; the database named by
``--database`` is dropped and created again. Prints one JSON object.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DATASETS, ROOT, add_copies, log, rounded, start_services_mode, start_worker, stop

CATALOGUE_SIZE = 44_441


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=CATALOGUE_SIZE)
    parser.add_argument("--database", default="storefront_bench_embed")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--catalogue", type=Path, default=DATASETS / "fashion-small-dev")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds before giving up")
    parser.add_argument("--quick", action="store_true", help="5,000 products")
    args = parser.parse_args()
    if args.quick:
        args.products = min(args.products, 5000)

    with tempfile.TemporaryDirectory(prefix="bench-worker-embed-") as tmp:
        tmp = Path(tmp)
        start_services_mode(tmp, args.database, args.redis_url)
        subprocess.run(
            [sys.executable, "manage.py", "prepare_model"], cwd=ROOT, check=True, stdout=sys.stderr
        )
        fill_catalogue(args)
        worker = start_worker(tmp)
        try:
            report = embed_with_worker(args)
        finally:
            stop(worker)
    print(json.dumps(rounded(report), indent=2))


def fill_catalogue(args):
    """The dev sample imported with its photos and grown with copies; nothing queued."""
    import redis

    from catalog.importing import import_catalogue
    from catalog.models import Product
    from recommender.models import PendingEmbedding

    import_catalogue(args.catalogue)
    real = list(Product.objects.exclude(image="").order_by("pk"))
    add_copies(real[number % len(real)] for number in range(args.products - len(real)))
    # The import's own embedding requests go: the sweep queues everything at once below.
    PendingEmbedding.objects.all().delete()
    redis.Redis.from_url(args.redis_url).flushdb()
    log(f"{Product.objects.exclude(image='').count()} products with a photo, no vectors")


def embed_with_worker(args):
    from celery import current_app
    from django.utils import timezone

    from catalog.models import Product
    from recommender import queueing
    from recommender.models import IndexBuild
    from recommender.vector_store import current_embeddings

    deadline = time.monotonic() + 120
    while not current_app.control.ping(timeout=1):
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not answer within 120 s")
    total = Product.objects.exclude(image="").count()
    since = timezone.now()
    started = time.perf_counter()
    queued = queueing.sweep()["queued"]
    embedded_seconds = searchable_seconds = None
    while searchable_seconds is None:
        time.sleep(1)
        elapsed = time.perf_counter() - started
        if elapsed > args.timeout:
            raise SystemExit(f"not done after {args.timeout} s")
        if embedded_seconds is None:
            done = current_embeddings().count()
            if done >= total:
                embedded_seconds = elapsed
                log(f"{done} products embedded in {elapsed:.1f} s")
        elif (
            IndexBuild.objects.filter(started_at__gte=since, item_count=total)
            .exclude(finished_at=None)
            .exists()
        ):
            searchable_seconds = elapsed
    builds = list(
        IndexBuild.objects.filter(started_at__gte=since)
        .exclude(finished_at=None)
        .order_by("started_at")
        .values("started_at", "item_count", "duration_seconds")
    )
    return {
        "products": total,
        "queued": queued,
        "embedded_seconds": embedded_seconds,
        "products_per_second": total / embedded_seconds,
        "searchable_seconds": searchable_seconds,
        "index_builds": [
            {
                "started_after_seconds": (build["started_at"] - since).total_seconds(),
                "items": build["item_count"],
                "seconds": build["duration_seconds"],
            }
            for build in builds
        ],
        "index_build_seconds_in_all": sum(build["duration_seconds"] for build in builds),
    }


if __name__ == "__main__":
    main()
