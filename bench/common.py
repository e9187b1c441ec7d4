"""What every benchmark shares: paths, logging to stderr, rounding, Django in a temp dir."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def log(message):
    print(message, file=sys.stderr, flush=True)


def rounded(value):
    """Floats rounded to 4 places, inside dicts and lists too, for readable JSON."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def setup_django(tmp, data_dir=None):
    """Start Django with the test settings and every runtime file under ``tmp``: a fresh
    SQLite database, media and index folders. ``data_dir`` keeps model weights (and
    caches) elsewhere when given. The settings read these from the environment."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["TEST_DATA_DIR"] = str(tmp)
    os.environ["DATA_DIR"] = str(data_dir or tmp)
    os.environ["MEDIA_ROOT"] = str(Path(tmp) / "media")
    os.environ["INDEX_DIR"] = str(Path(tmp) / "index")
    os.environ["DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
    import django

    django.setup()


# Services mode: PostgreSQL, Redis, Celery workers and gunicorn, as in production.


def services_env(tmp, database, redis_url):
    """Environment for the production settings over a bench database and Redis db, with
    every file under ``tmp``. Set it in os.environ before django.setup(); processes the
    bench starts inherit it."""
    tmp = Path(tmp)
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "REDIS_URL": redis_url,
        "DATA_DIR": str(tmp / "data"),
        "MEDIA_ROOT": str(tmp / "media"),
        "INDEX_DIR": str(tmp / "index"),
        "PHOTO_SEARCH_RATE": "1000000/minute",
        "LOG_LEVEL": "WARNING",
    }


def start_services_mode(tmp, database, redis_url):
    """Point this process at a fresh bench database (dropped and created again) and an
    emptied Redis db, reusing this checkout's converted model (var/models, made by
    `make run` or prepare_model) rather than converting it again; then django.setup()."""
    import psycopg
    import redis

    os.environ.update(services_env(tmp, database, redis_url))
    data_dir = Path(tmp) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if (ROOT / "var" / "models").is_dir():
        (data_dir / "models").symlink_to(ROOT / "var" / "models", target_is_directory=True)
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{database}"')
    redis.Redis.from_url(redis_url).flushdb()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def start_worker(tmp, *options):
    """A `celery worker` process (concurrency 1) in the current environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=1", "--loglevel=WARNING",
         *options],
        cwd=ROOT,
        stdout=open(Path(tmp) / "worker.log", "ab"),  # noqa: SIM115 (closed with the process)
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# What a copy of a real product takes from it, its photo file included.
COPIED_FIELDS = (
    "gender",
    "master_category",
    "sub_category",
    "article_type",
    "base_colour",
    "season",
    "year",
    "usage",
    "price",
    "stock",
    "image",
    "image_checksum",
)


def add_copies(sources):
    """Store a copy of each product of ``sources`` (one per item, repeats allowed), under
    ids after every existing product's, named after its source; returns their ids."""
    from catalog.models import Product

    first_copy = Product.objects.order_by("-pk").values_list("pk", flat=True).first() + 1
    copies = [
        Product(
            pk=first_copy + number,
            **{field: getattr(source, field) for field in COPIED_FIELDS},
            name=f"{source.name} ({number + 2})",
        )
        for number, source in enumerate(sources)
    ]
    Product.objects.bulk_create(copies, batch_size=2000)
    return [copy.pk for copy in copies]


def catalogue_sample(catalogue, cache=None):
    """The vectors and labels of a catalogue folder's photos (quality.evaluation), kept in
    ``cache``/catalogue.npz when given so later runs and other benchmarks reuse them.
    Returns ``(sample, seconds spent computing)``: 0 when read from the cache."""
    from quality import evaluation

    return evaluation.cached_sample(
        cache and Path(cache) / "catalogue.npz",
        lambda: evaluation.embed_catalogue_sample(
            catalogue, progress=lambda done: log(f"catalogue: {done} photos")
        ),
    )


def reduces(vectors):
    """Whether a build lists these vectors from reduced candidates (neighbour_lists)."""
    from recommender import neighbour_lists

    return neighbour_lists.reduces(*vectors.shape)


@contextlib.contextmanager
def every_list_exact():
    """Index builds inside list every item exactly, in any space (as before reduction)."""
    from recommender import neighbour_lists

    before, neighbour_lists.REDUCE_FROM_ITEMS = neighbour_lists.REDUCE_FROM_ITEMS, 2**62
    try:
        yield
    finally:
        neighbour_lists.REDUCE_FROM_ITEMS = before
