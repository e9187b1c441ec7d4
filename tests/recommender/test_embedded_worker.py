"""Embedded mode (no Redis): requests only queue work in the broker folder, and a real
`celery worker` process, as `make run` starts it, embeds and rebuilds."""

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile

from config.celery import app as celery_app
from config.settings.base import folder_broker_options
from recommender.models import Embedding, IndexBuild
from recommender.similar import similar_products
from tests.factories import EmbeddingFactory, ProductFactory
from tests.images import image_bytes
from tests.workers import database_url, forget_broker_connections, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PROJECT = Path(__file__).resolve().parents[2]
BROKER_URL = "filesystem://localhost//"


@pytest.fixture
def embedded_mode(settings):
    """This process as `make run`'s web server: tasks go to the folder a worker reads
    (the one a worker started with the test settings uses), the cache is a shared folder."""
    broker = Path(settings.TEST_DATA_DIR) / "broker"
    shutil.rmtree(broker, ignore_errors=True)
    saved = {
        key: celery_app.conf[key] for key in ("task_always_eager", "broker_url", "broker_transport_options")
    }
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.INDEX_REBUILD_DELAY = 1
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": Path(settings.TEST_DATA_DIR) / "cache",
        }
    }
    cache.clear()  # a rebuild marker left by an earlier test would hold rebuilds back
    celery_app.conf.update(
        task_always_eager=False, broker_url=BROKER_URL, broker_transport_options=folder_broker_options(broker)
    )
    forget_broker_connections()
    yield broker / "queue"
    celery_app.conf.update(saved)
    forget_broker_connections()


def queued_messages(queue):
    return len(list(queue.iterdir()))


def product_with_photo(index):
    colour = ((index * 37) % 256, (index * 91) % 256, (index * 53) % 256)
    return ProductFactory(image=ContentFile(image_bytes(colour=colour), name=f"{index}.jpg"))


def tail(log):
    return lambda: log.read_text(errors="replace")[-3000:]


def test_a_new_photo_and_a_stale_index_are_queued_not_worked_on_in_the_request(embedded_mode, client):
    product = product_with_photo(1)
    assert queued_messages(embedded_mode) == 2  # embedding and thumbnails, sent after the commit
    assert not Embedding.objects.exists()

    # Vectors without an index: the page answers by exact search and asks for a rebuild.
    EmbeddingFactory.create_batch(6)
    response = client.get(product.get_absolute_url())

    assert response.status_code == 200
    assert not IndexBuild.objects.exists()
    assert queued_messages(embedded_mode) == 3  # and the rebuild
    assert not Embedding.objects.filter(product=product).exists()


@pytest.mark.slow
def test_a_worker_reading_the_folder_embeds_and_indexes_new_products(embedded_mode, settings, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        CELERY_TASK_ALWAYS_EAGER="0",
        DATABASE_URL=database_url(),
        TEST_DATA_DIR=str(settings.TEST_DATA_DIR),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        INDEX_DIR=str(settings.INDEX_DIR),
        INDEX_REBUILD_DELAY="1",
    )
    log = tmp_path / "worker.log"
    with open(log, "wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO"],
            cwd=PROJECT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        products = [product_with_photo(i) for i in range(8)]
        wait_for(lambda: Embedding.objects.count() == 8, 240, "the worker to embed the products", tail(log))
        wait_for(
            lambda: IndexBuild.objects.filter(status="ready", item_count=8).exists(), 60, "a build", tail(log)
        )
        similar = similar_products(products[0])
        assert similar and products[0] not in similar
        assert queued_messages(embedded_mode) == 0
    finally:
        worker.terminate()
        worker.wait(timeout=30)


@pytest.mark.slow
def test_make_run_starts_the_web_server_and_the_worker_and_stops_both(tmp_path, unused_port):
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local", DATA_DIR=str(tmp_path), MEDIA_ROOT=str(tmp_path)
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=PROJECT, env=env, check=True)
    log = tmp_path / "run.log"
    with open(log, "wb") as output:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "scripts.run_embedded", f"127.0.0.1:{unused_port}"],
            cwd=PROJECT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{unused_port}/"), 60, "the storefront", tail(log))
        wait_for(lambda: b"ready." in log.read_bytes(), 60, "the worker", tail(log))
    finally:
        launcher.send_signal(signal.SIGINT)  # Ctrl-C
        launcher.wait(timeout=40)
    assert not _answers(f"http://127.0.0.1:{unused_port}/")
    leftovers = subprocess.run(["pgrep", "-f", f"schedule={tmp_path}"], capture_output=True, text=True)
    assert leftovers.stdout == "", "the worker outlived `make run`"


def _answers(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False
