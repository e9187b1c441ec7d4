"""Embedding and indexing through a real Redis broker and real `celery worker` processes."""

import time

import pytest
from django.conf import settings as django_settings
from django.db import transaction

from recommender.models import Embedding, IndexBuild
from recommender.similar import similar_products
from tests import workers as worker_processes
from tests.factories import ProductFactory
from tests.images import image_bytes
from tests.workers import Workers

pytestmark = [pytest.mark.celery_worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REDIS_URL = "redis://127.0.0.1:6379/15"
VISIBILITY_TIMEOUT = 8


@pytest.fixture
def services_mode(settings):
    """Point this process at Redis (broker, results, cache) like a web node in services mode."""
    with worker_processes.services_mode(settings, REDIS_URL, VISIBILITY_TIMEOUT):
        yield settings


@pytest.fixture
def workers(services_mode, tmp_path):
    pool = Workers(tmp_path, REDIS_URL, VISIBILITY_TIMEOUT)
    yield pool
    pool.stop_all()


def wait_for(condition, timeout, workers, what):
    worker_processes.wait_for(condition, timeout, what, workers.logs)


def embedded_count(ids):
    return Embedding.objects.filter(product_id__in=ids).count()


def coloured_product(index, **fields):
    colour = ((index * 37) % 256, (index * 91) % 256, (index * 53) % 256)
    return ProductFactory(image=_image_file(colour, index), **fields)


def _image_file(colour, index):
    from django.core.files.base import ContentFile

    return ContentFile(image_bytes(colour=colour), name=f"{index}.jpg")


def test_a_product_created_through_the_api_becomes_similar_to_others(workers, staff_client):
    workers.start("first")
    existing = [coloured_product(i) for i in range(12)]
    wait_for(
        lambda: embedded_count([p.pk for p in existing]) == 12, 180, workers, "the catalogue to be embedded"
    )
    wait_for(lambda: IndexBuild.objects.filter(status="ready").exists(), 60, workers, "the first index build")

    twin_of = existing[3]
    response = staff_client.post(
        "/api/products/",
        {
            "id": 900001,
            "name": "Twin of product three",
            "price": "10.00",
            "stock": 5,
            "articleType": twin_of.article_type,
            "image": _image_file((3 * 37 % 256, 3 * 91 % 256, 3 * 53 % 256), 900001),
        },
    )
    assert response.status_code == 201, response.content
    wait_for(lambda: embedded_count([900001]) == 1, 120, workers, "the new product's vectors")
    wait_for(
        lambda: any(p.pk == 900001 for p in similar_products(twin_of)),
        60,
        workers,
        "the new product in its twin's similar list",
    )


def test_a_burst_of_new_products_causes_few_rebuilds(workers):
    workers.start("burst")
    with transaction.atomic():
        burst = [coloured_product(i) for i in range(120)]
    for i in range(120, 150):  # and some saved one by one, outside any transaction
        burst.append(coloured_product(i))
    ids = [p.pk for p in burst]
    wait_for(lambda: embedded_count(ids) == len(ids), 300, workers, "the burst to be embedded")

    def settled():
        latest = IndexBuild.objects.filter(status="ready").first()
        return latest is not None and latest.item_count == len(ids)

    wait_for(settled, 120, workers, "an index build holding the whole burst")
    time.sleep(django_settings.INDEX_REBUILD_DELAY + 2)
    builds = list(IndexBuild.objects.order_by("started_at"))
    assert 1 <= len(builds) <= 5, f"{len(builds)} rebuilds for a burst of {len(ids)} products"
    for previous, following in zip(builds, builds[1:]):  # never one right after another
        pause = (following.started_at - previous.finished_at).total_seconds()
        assert pause >= django_settings.INDEX_REBUILD_DELAY - 0.5, (previous, following, pause)


def test_killing_the_worker_mid_task_loses_nothing(workers, services_mode):
    with transaction.atomic():
        products = [coloured_product(i) for i in range(200)]
    ids = [p.pk for p in products]
    victim = workers.start("victim")
    wait_for(lambda: embedded_count(ids) > 0, 180, workers, "the first worker to start embedding")
    workers.kill(victim)
    assert embedded_count(ids) < len(ids), "the worker finished before it could be killed"
    workers.start("rescuer")
    wait_for(lambda: embedded_count(ids) == len(ids), 240, workers, "the second worker to finish the work")
    wait_for(
        lambda: IndexBuild.objects.filter(status="ready", item_count=len(ids)).exists(),
        120,
        workers,
        "an index build of every product",
    )
