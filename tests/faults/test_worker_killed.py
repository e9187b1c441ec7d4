"""A Celery worker SIGKILLed in the middle of an embedding batch (the real CNN at work):
the batch goes to another worker once its visibility timeout has passed, every product
ends up with exactly one vector and the index holds each of them once."""

import os
import signal
import time

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count

from recommender import annoy_index
from recommender.models import Embedding, IndexBuild, PendingEmbedding
from recommender.queueing import EMBED_TASK
from tests.factories import ProductFactory
from tests.images import image_bytes
from tests.workers import Workers, queued_tasks, redis_client, services_mode, taken_tasks, wait_for

pytestmark = [pytest.mark.celery_worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REDIS_URL = "redis://127.0.0.1:6379/14"
VISIBILITY_TIMEOUT = 5
BATCH = 32
BATCHES = 3


@pytest.fixture
def workers(settings, tmp_path):
    with services_mode(settings, REDIS_URL, VISIBILITY_TIMEOUT):
        # The web side sends one task per batch; each task is one CNN batch in the worker.
        settings.EMBED_TASK_SIZE = BATCH
        pool = Workers(tmp_path, REDIS_URL, VISIBILITY_TIMEOUT, EMBED_BATCH_SIZE=BATCH)
        yield pool
        pool.stop_all()


def embedded_count(ids):
    return Embedding.objects.filter(product_id__in=ids).count()


def photographed_product(index):
    colour = ((index * 37) % 256, (index * 91) % 256, (index * 53) % 256)
    return ProductFactory(image=ContentFile(image_bytes(colour=colour), name=f"{index}.jpg"))


def kill_mid_batch(process, broker, ids, workers, timeout=180):
    """SIGKILL the worker while it holds an embedding batch whose vectors are not stored,
    once it has stored at least one batch (the CNN is loaded and working). The worker is
    frozen (SIGSTOP) while that is checked, so it cannot store the batch in between.
    Returns the message of the batch it was killed in."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the worker died by itself:\n{workers.logs()}"
        if embedded_count(ids) and any(m.task == EMBED_TASK for m in taken_tasks(broker)):
            os.kill(process.pid, signal.SIGSTOP)
            held = [m for m in taken_tasks(broker) if m.task == EMBED_TASK]
            if held and embedded_count(held[0].args[0]) == 0:
                workers.kill(process)
                return held[0]
            os.kill(process.pid, signal.SIGCONT)  # that batch was stored already: try the next
        time.sleep(0.05)
    pytest.fail(f"never caught the worker in the middle of a batch\n{workers.logs()}")


def test_a_batch_of_a_killed_worker_is_embedded_once_by_another_worker(workers):
    broker = redis_client(REDIS_URL)
    with transaction.atomic():
        products = [photographed_product(i) for i in range(BATCH * BATCHES)]
    ids = [p.pk for p in products]
    queued = queued_tasks(broker)
    assert [len(m.args[0]) for m in queued if m.task == EMBED_TASK] == [BATCH] * BATCHES

    victim = workers.start("victim")
    killed = kill_mid_batch(victim, broker, ids, workers)

    # Killed mid-batch: some batches stored, the batch in hand not, its message not acknowledged.
    assert 0 < embedded_count(ids) < len(ids)
    assert embedded_count(killed.args[0]) == 0
    assert killed.id in {m.id for m in taken_tasks(broker)}

    # A message left by a dead worker goes back to the queue when a worker scans for
    # expired ones: at its start, then only every ~100 s (kombu's unacked_restore_interval
    # x unacked_restore_throttle). Start the rescuer once the message has expired.
    time.sleep(VISIBILITY_TIMEOUT + 1)
    workers.start("rescuer")
    wait_for(lambda: embedded_count(ids) == len(ids), 180, "every product to be embedded", workers.logs)
    wait_for(
        lambda: IndexBuild.objects.filter(status="ready", item_count=len(ids)).exists(),
        120,
        "an index build of every product",
        workers.logs,
    )

    # The very batch the victim died in was delivered again, to the rescuer, and done there.
    rescuer_log = workers.log("rescuer")
    assert f"[{killed.id}] received" in rescuer_log
    assert f"[{killed.id}] succeeded" in rescuer_log
    # Exactly one vector per product, nothing left pending, no message left in a dead hand.
    per_product = dict(
        Embedding.objects.filter(product_id__in=ids)
        .values("product_id")
        .annotate(n=Count("pk"))
        .values_list("product_id", "n")
    )
    assert per_product == {pk: 1 for pk in ids}
    assert not PendingEmbedding.objects.exists()
    wait_for(lambda: not taken_tasks(broker), 30, "the rescuer to acknowledge its messages", workers.logs)
    # The index serves every product once.
    index = annoy_index.current_index()
    assert sorted(index.product_ids.tolist()) == sorted(ids)
