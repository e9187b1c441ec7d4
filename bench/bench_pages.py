"""Pages and photo search under load at catalogue size, in services mode.

A PostgreSQL database of ``--products`` products (the real dev sample imported with its
photos, grown with copies whose vectors are the real ones plus noise), an index built by
``rebuild_index``, Redis for cache and broker, one Celery worker, and gunicorn with the
production settings and 2 workers, loaded by one ``wrk`` process on loopback:

1. GET paths, one after the other, ``--connections`` connections for ``--duration`` s each
   (right after one request for every path: shared parts of pages are cached, as in a
   visited shop):
   ``/api/products/<id>/`` (the reference: one row as JSON), ``/api/products/<id>/similar/``,
   the product page and the catalogue page, each over random products / pages. Reports
   req/s, p50, p99, errors, and each path's req/s as a share of the reference's.
2. Photo search on a freshly started server: the first upload's time, then 4 concurrent
   uploaders (real shopper photos) for ``--duration`` s: p50/p99, and the resident memory
   of each web worker after it; once per ``--inference-threads`` value (the model's
   threads in each web worker: the default, all cores, and 1).

    .venv/bin/python bench/bench_pages.py [--products 44441] [--duration 15] [--quick]

Needs ``wrk`` (Debian: apt-get install wrk), PostgreSQL on 127.0.0.1:5432 and Redis on
127.0.0.1:6379; the database named by ``--database`` is dropped and created again.
Prints one JSON object.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from common import (
    DATASETS,
    ROOT,
    add_copies,
    catalogue_sample,
    free_port,
    log,
    rounded,
    start_services_mode,
    start_worker,
    stop,
)

CATALOGUE_SIZE = 44_441
# Prints the run's figures as one JSON line when wrk ends; `paths` (set per run) are
# requested at random, so no single row or page stays hot in a cache.
WRK_SCRIPT = """
local paths = {%(paths)s}
math.randomseed(%(seed)d)
%(body)s
request = function()
  return wrk.format(%(method)s, paths[math.random(#paths)])
end
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %%d, "seconds": %%.3f, "p50_ms": %%.2f, "p99_ms": %%.2f, "max_ms": %%.2f, ' ..
    '"errors": %%d, "non_2xx": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    errors.connect + errors.read + errors.write + errors.timeout, errors.status))
end
"""


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=CATALOGUE_SIZE)
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per path")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--database", default="storefront_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--catalogue", type=Path, default=DATASETS / "fashion-small-dev")
    parser.add_argument("--photos", type=Path, default=DATASETS / "clothing-photos")
    parser.add_argument("--cache", type=Path, help="folder with (or for) the dev sample's vectors")
    parser.add_argument("--quick", action="store_true", help="5,000 products, 5 s per path")
    parser.add_argument("--profile", type=Path, help="folder for a cProfile of each path in this process")
    parser.add_argument(
        "--inference-threads",
        default="0,1",
        help="INFERENCE_THREADS of the photo search runs, one run each (0: the setting's default)",
    )
    args = parser.parse_args()
    if args.quick:
        args.products, args.duration = min(args.products, 5000), 5
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")

    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        tmp = Path(tmp)
        start_services_mode(tmp, args.database, args.redis_url)
        report = {"products": args.products, "web_workers": args.web_workers, "connections": args.connections}
        report["setup"] = fill_catalogue(args)
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, check=True
        )
        subprocess.run(
            [sys.executable, "manage.py", "prepare_model"], cwd=ROOT, check=True, stdout=sys.stderr
        )
        # Drop the tasks the import queued: the vectors are stored and the index is built,
        # so the worker stays idle unless a page asks for work.
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
        worker = start_worker(tmp)
        try:
            paths = sample_paths()
            report["pages"] = pages_under_load(tmp, args, paths)
            report["pages_in_process"] = pages_in_process(paths, args.profile)
            for threads in args.inference_threads.split(","):
                key = "photo_search" if threads == "0" else f"photo_search_{threads}_inference_threads"
                report[key] = photo_search_under_load(tmp, args, threads)
        finally:
            stop(worker)
    print(json.dumps(rounded(report), indent=2))


def fill_catalogue(args):
    """The dev sample imported for real, grown to ``args.products`` with copies, its vectors
    stored and the index built. Returns the seconds each step took."""
    import numpy as np
    from django.db import connection
    from django.utils import timezone

    from catalog.importing import import_catalogue
    from catalog.models import Product
    from quality import evaluation
    from recommender.embedding import VECTOR_RECIPE
    from recommender.models import Embedding
    from recommender.refresh import rebuild_index
    from recommender.vector_store import current_model_name

    seconds = {}
    started = time.perf_counter()
    import_catalogue(args.catalogue)
    seconds["import_dev_sample"] = time.perf_counter() - started
    log(f"imported {Product.objects.count()} products")

    sample, seconds["embed_dev_sample"] = catalogue_sample(args.catalogue, args.cache)
    cnn, colour = evaluation.synthetic_catalogue(sample, args.products)
    real_ids = [int(key) for key in sample.keys]
    real = {product.pk: product for product in Product.objects.filter(pk__in=real_ids)}
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    ids = real_ids + add_copies(
        real[real_ids[rng.integers(len(real_ids))]] for _ in range(args.products - len(real_ids))
    )
    checksum = dict(Product.objects.values_list("pk", "image_checksum"))
    now, model_name = timezone.now(), current_model_name()
    Embedding.objects.bulk_create(
        (
            Embedding(
                product_id=pk,
                model_name=model_name,
                recipe=VECTOR_RECIPE,
                checksum=checksum[pk],
                cnn=cnn[row].tobytes(),
                colour=colour[row].tobytes(),
                updated_at=now,
            )
            for row, pk in enumerate(ids)
        ),
        batch_size=2000,
    )
    seconds["grow_to_size"] = time.perf_counter() - started
    with connection.cursor() as cursor:  # planner statistics, as autovacuum keeps them in production
        cursor.execute("ANALYZE")
    started = time.perf_counter()
    rebuild_index()
    seconds["index_build"] = time.perf_counter() - started
    log(f"{len(ids)} products, index built in {seconds['index_build']:.1f} s")
    return seconds


def gunicorn(tmp, args, name, env=None):
    """Start ``make serve``'s server (without collectstatic) on a free port, with ``env``
    added to the environment; returns (process, base URL)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "config.wsgi", f"--bind=127.0.0.1:{port}",
            f"--workers={args.web_workers}", "--timeout=60",
        ],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=open(tmp / f"{name}.log", "wb"),  # noqa: SIM115 (closed with the process)
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/health/live/", timeout=5).close()
            return process, url
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError((tmp / f"{name}.log").read_text()[-3000:])


def worker_rss_mb(master):
    """Resident memory of each worker process of a gunicorn master, in MB."""
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    sizes = []
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


def wrk(url, paths, args, tmp, connections=None, method="GET", body=""):
    script = tmp / "wrk.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "paths": ", ".join(json.dumps(path) for path in paths),
            "seed": 1,
            "method": json.dumps(method),
            "body": body,
        }
    )
    connections = connections or args.connections
    result = subprocess.run(
        [
            "wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{args.duration}s", "--timeout=10s",
            "-s", str(script), url,
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["req_per_s"] = figures["requests"] / figures["seconds"]
    return figures


def sample_paths():
    """The GET paths under test, by name: each over 500 random products or 200 pages."""
    import numpy as np

    from catalog.models import Product

    ids = list(Product.objects.values_list("pk", flat=True))
    rng = np.random.default_rng(1)
    sample = [int(pk) for pk in rng.choice(ids, 500, replace=False)]
    pages = max(1, len(ids) // 24)
    return {
        "api_product": [f"/api/products/{pk}/" for pk in sample],
        "similar_api": [f"/api/products/{pk}/similar/?k=5" for pk in sample],
        "product_page": [f"/products/{pk}/" for pk in sample],
        "catalogue_page": [f"/?page={int(n)}" for n in rng.integers(1, min(pages, 200) + 1, 200)],
    }


def pages_in_process(paths, profile_dir=None, requests=300):
    """Each path's milliseconds in this process, a new visitor per request: the median of
    first visits (an emptied cache, 100 paths), then, once every path was seen, median and
    p90 (profiled with ``profile_dir``)."""
    import cProfile

    import numpy as np
    from django.core.cache import cache
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")  # one handler: a new one loads the middleware again
    results = {}
    for name, path_list in paths.items():
        cache.clear()
        client.get(path_list[-1])  # counts the catalogue's facets again, once
        first_visits = []
        for path in path_list:
            started = time.perf_counter()
            assert client.get(path).status_code == 200, path
            first_visits.append((time.perf_counter() - started) * 1000)
        profiler = cProfile.Profile() if profile_dir else None
        times = []
        for number in range(requests):
            client.cookies.clear()  # a new visitor
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            client.get(path_list[number % len(path_list)])
            if profiler:
                profiler.disable()
            times.append((time.perf_counter() - started) * 1000)
        results[name] = {
            "first_visit_median_ms": float(np.median(first_visits[:100])),
            "median_ms": float(np.median(times)),
            "p90_ms": float(np.percentile(times, 90)),
        }
        if profiler:
            profile_dir.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(profile_dir / f"{name}.prof")
    reference = results["api_product"]["median_ms"]
    for figures in results.values():
        figures["over_reference"] = figures["median_ms"] / reference
    log(f"in process: {results}")
    return results


def pages_under_load(tmp, args, paths):
    server, url = gunicorn(tmp, args, "pages")
    try:
        # Every path is seen once just before its load (and every worker has loaded the
        # index): the run measures pages whose shared parts are cached, as a visited shop's
        # are, within their 60 s. pages_in_process reports what a first visit costs.
        results = {}
        for name, path_list in paths.items():
            for path in path_list:
                try:
                    urllib.request.urlopen(url + path, timeout=30).close()
                except urllib.error.HTTPError as exc:
                    raise RuntimeError(f"{path}: {exc}\n" + (tmp / "pages.log").read_text()[-5000:]) from exc
            results[name] = wrk(url, path_list, args, tmp)
            log(f"{name}: {results[name]}")
        reference = results["api_product"]["req_per_s"]
        for figures in results.values():
            figures["share_of_reference"] = figures["req_per_s"] / reference
            figures["p99_over_p50"] = figures["p99_ms"] / figures["p50_ms"]
        results["web_worker_rss_mb"] = worker_rss_mb(server)
    finally:
        stop(server)
    return results


def photo_search_under_load(tmp, args, inference_threads="0"):
    """First upload on a fresh server, then 4 concurrent uploaders of real shopper photos."""
    photos = sorted((args.photos / "images").glob("*.jpg"))[:8]
    if not photos:
        return {"skipped": f"no shopper photos in {args.photos}"}
    boundary = "benchboundary7d1f"

    def multipart(data):
        return (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="photo.jpg"\r\n'
                "Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )

    bodies = [multipart(path.read_bytes()) for path in photos]
    server, url = gunicorn(
        tmp, args, f"photo-search-{inference_threads}", {"INFERENCE_THREADS": inference_threads}
    )
    try:
        rss_at_start = worker_rss_mb(server)
        request = urllib.request.Request(
            url + "/api/search/image",
            data=bodies[0],
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
        first_ms = (time.perf_counter() - started) * 1000
        # wrk sends one body per connection script; the photos take turns by connection.
        body = tmp / "body.bin"
        body.write_bytes(bodies[1])
        lua_body = (
            f'wrk.headers["Content-Type"] = "multipart/form-data; boundary={boundary}"\n'
            f'local file = io.open("{body}", "rb"); wrk.body = file:read("*a"); file:close()\n'
        )
        figures = wrk(url, ["/api/search/image"], args, tmp, connections=4, method="POST", body=lua_body)
        log(f"photo search: {figures}")
        return {
            "first_search_ms": first_ms,
            "concurrent_4": figures,
            "web_worker_rss_mb_at_start": rss_at_start,
            "web_worker_rss_mb_after": worker_rss_mb(server),
        }
    finally:
        stop(server)


if __name__ == "__main__":
    main()
