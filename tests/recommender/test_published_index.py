"""Index builds published through the search files storage and served by several hosts,
each from a copy in its own cache folder: a new build is picked up after the pointer
check interval, a build whose stored files are damaged is never switched to, old builds
leave the store, and an S3-compatible store works as well as a folder.

This test process publishes (as a worker would); the hosts that serve are separate
Python processes with their own cache folder and their own loaded build.
"""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from recommender import annoy_index, search_files
from recommender.embedding.head import HeadWeights
from recommender.models import ModelVersion
from recommender.search_space import version_space
from tests.catalog.test_media import object_store  # noqa: F401  (a real S3-compatible server)
from tests.servers import PROJECT

CLUSTERS, PER_CLUSTER, DIMENSIONS = 3, 10, 16

HOST = textwrap.dedent(
    """
    import json, sys
    import django

    django.setup()
    import numpy as np
    from recommender import annoy_index

    for line in sys.stdin:
        try:
            index = annoy_index.current_index()
            vector = np.array(json.loads(line), dtype=np.float32)
            ((nearest, _),) = index.neighbours_of_vector(vector, 1)
            answer = {"build": index.build_id, "nearest": nearest}
        except annoy_index.IndexUnavailable as exc:
            answer = {"build": None, "error": str(exc)}
        print(json.dumps(answer), flush=True)
    """
)


class Host:
    """A web host: its own process, cache folder and loaded build, over the shared store."""

    def __init__(self, folder, name, store_dir, check_seconds=0, **env):
        self.cache = folder / f"{name}-cache"
        self.log_path = folder / f"{name}.log"
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith(("INDEX_", "SEARCH_FILES_"))
        }
        environment.update(
            DJANGO_SETTINGS_MODULE="config.settings.test",
            TEST_DATA_DIR=str(folder / f"{name}-data"),
            INDEX_DIR=str(store_dir),
            INDEX_CACHE_DIR=str(self.cache),
            INDEX_POINTER_CHECK_SECONDS=str(check_seconds),
            **env,
        )
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", HOST],
                cwd=PROJECT,
                env=environment,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )

    def serve(self, vector):
        """(build id, nearest product id) of a query; (None, reason) without a usable build."""
        self.process.stdin.write(json.dumps(np.asarray(vector).tolist()) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the host died:\n{self.log_path.read_text()[-3000:]}"
        answer = json.loads(line)
        return answer["build"], answer.get("nearest", answer.get("error"))

    def copies(self):
        return sorted(path.name for path in (self.cache / "builds").iterdir())

    def stop(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def hosts(tmp_path, fresh_index_dir):
    started = []

    def start(name, check_seconds=0, **env):
        host = Host(tmp_path, name, fresh_index_dir, check_seconds, **env)
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


@pytest.fixture
def publisher(settings, tmp_path, fresh_index_dir):
    """This process as the worker publishing builds, with a cache folder of its own."""
    settings.INDEX_CACHE_DIR = tmp_path / "worker-cache"
    return fresh_index_dir


def centres():
    return np.eye(CLUSTERS, DIMENSIONS, dtype=np.float32)


def publish(build_id):
    """Publish build ``build_id`` of three tight clusters; its product ids are
    ``build_id * 1000 + row``, so an answer tells which build gave it."""
    rng = np.random.default_rng(build_id)
    vectors = np.repeat(centres(), PER_CLUSTER, axis=0) + rng.normal(
        0, 0.05, (CLUSTERS * PER_CLUSTER, DIMENSIONS)
    )
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = build_id * 1000 + np.arange(len(vectors))
    return annoy_index.write_build(build_id, vectors, ids, 5, {"model_name": "efficientnet_lite0"})


def build_of(answer):
    build, nearest = answer
    assert build is None or nearest // 1000 == build, answer  # answered by the build it names
    return build


def stored_file(store_dir, build_id, suffix):
    return store_dir / "builds" / str(build_id) / f"build-{build_id}{suffix}"


def test_a_build_published_by_the_worker_is_served_by_every_host(publisher, hosts):
    first, second = hosts("first"), hosts("second")
    assert first.serve(centres()[0]) == (None, "no index has been built yet")

    stored_name = publish(1)

    assert stored_name == "builds/1/build-1.ann"
    assert build_of(first.serve(centres()[0])) == build_of(second.serve(centres()[1])) == 1
    # Each host serves its own copy, and the worker made none.
    assert len(first.copies()) == len(second.copies()) == 1
    assert first.cache != second.cache
    assert not list((publisher.parent / "worker-cache").glob("builds/*"))


def test_a_host_switches_to_a_new_build_at_its_next_pointer_check(publisher, hosts):
    interval = 3.0
    host = hosts("web", check_seconds=interval)
    publish(1)
    checked = time.monotonic()
    assert build_of(host.serve(centres()[0])) == 1

    publish(2)
    if time.monotonic() - checked < interval - 0.5:  # a slow machine may be past it already
        assert build_of(host.serve(centres()[0])) == 1  # no look at the store before then
    deadline = time.monotonic() + interval + 10
    while build_of(host.serve(centres()[0])) != 2:
        assert time.monotonic() < deadline, "the host never switched to the new build"
        time.sleep(0.2)
    assert time.monotonic() - checked >= interval * 0.9


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "index file missing": lambda store, build: stored_file(store, build, ".ann").unlink(),
    "index file corrupt": lambda store, build: flip_a_byte(stored_file(store, build, ".ann")),
    "id map truncated": lambda store, build: os.truncate(stored_file(store, build, ".ids.npy"), 10),
    "pointer corrupt": lambda store, build: (store / annoy_index.POINTER_NAME).write_text("{not json"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_host_keeps_serving_its_build_while_the_new_one_is_damaged_in_the_store(
    publisher, hosts, damage, settings, tmp_path
):
    host = hosts("web")
    publish(1)
    assert build_of(host.serve(centres()[0])) == 1

    publish(2)
    DAMAGE[damage](publisher, 2)

    for cluster in range(CLUSTERS):  # every query answers, from build 1
        assert build_of(host.serve(centres()[cluster])) == 1
    # A host starting now has nothing it could serve: it searches exactly.
    assert hosts("newcomer").serve(centres()[0])[0] is None

    publish(3)
    assert build_of(host.serve(centres()[2])) == 3
    assert "still serving build 1" in host.log_path.read_text()


def test_old_builds_leave_the_store_and_the_hosts_caches(publisher, hosts):
    host = hosts("web")
    for build_id in range(1, 7):
        publish(build_id)
        assert build_of(host.serve(centres()[0])) == build_id

    assert sorted((publisher / "builds").iterdir()) == [
        publisher / "builds" / "5",
        publisher / "builds" / "6",
    ]
    assert len(host.copies()) == search_files.CACHED_BUILDS_KEPT
    assert any(copy.startswith("build-6-") for copy in host.copies())


def test_scratch_left_by_a_killed_process_is_removed_once_abandoned(publisher, settings):
    cache = settings.INDEX_CACHE_DIR
    (cache / "builds").mkdir(parents=True)
    (cache / "versions").mkdir()
    abandoned = [
        cache / ".staging-killed-build",  # a worker killed while building
        cache / "builds" / ".build-3-0123.killed",  # a host killed while copying a build
        cache / "versions" / ".version-2.npz.killed.tmp",  # ... or a version's weights
    ]
    recent = cache / ".staging-building-now"
    for path in [*abandoned[:2], recent]:
        path.mkdir()
        (path / "build-3.ann").write_bytes(b"part")
    abandoned[2].write_bytes(b"part")
    day_old = time.time() - search_files.ABANDONED_AFTER_SECONDS - 60
    for path in abandoned:
        os.utime(path, (day_old, day_old))

    publish(1)

    assert [path for path in abandoned if path.exists()] == []
    assert (recent / "build-3.ann").exists()  # may be another process's, still writing


def test_queries_never_fail_while_a_host_switches_builds(publisher):
    publish(1)
    errors, builds = [], set()
    stop = threading.Event()

    def query():
        while not stop.is_set():
            try:
                index = annoy_index.current_index()
                ((nearest, _),) = index.neighbours_of_vector(centres()[1], 1)
                assert nearest // 1000 == index.build_id
                builds.add(index.build_id)
            except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
                errors.append(exc)

    readers = [threading.Thread(target=query) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for build_id in range(2, 6):
            publish(build_id)
            time.sleep(0.1)
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=30)
    assert errors == []
    assert {1, 5} <= builds


def test_the_build_lock_is_shared_through_redis(settings, redis_server):
    """Rebuilds on different hosts take turns when the lock lives in Redis."""
    settings.REDIS_URL = redis_server.url
    settings.CACHES = {
        "default": {"BACKEND": "config.cache.ForgivingRedisCache", "LOCATION": redis_server.url}
    }
    order = []
    inside = threading.Event()

    def first():
        with annoy_index.build_lock():
            inside.set()
            time.sleep(0.5)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(10)
    assert redis_server._cli("exists", f":1:{annoy_index.LOCK_CACHE_KEY}") == "1"  # in Redis, not a file
    with annoy_index.build_lock():
        order.append("second inside")
    thread.join(10)
    assert order == ["first done", "second inside"]
    assert redis_server._cli("exists", f":1:{annoy_index.LOCK_CACHE_KEY}") == "0"


# --- An S3-compatible store (moto's server) ---


@pytest.fixture
def search_bucket(object_store, settings, tmp_path):  # noqa: F811
    import boto3

    boto3.client("s3", endpoint_url=object_store).create_bucket(Bucket="search-files")
    settings.STORAGES = {
        **settings.STORAGES,
        "search_files": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": "search-files", "endpoint_url": object_store, "file_overwrite": True},
        },
    }
    settings.INDEX_CACHE_DIR = tmp_path / "worker-cache"
    return object_store


def stored_keys(endpoint):
    import boto3

    listing = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="search-files")
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_builds_are_published_to_and_served_from_an_object_store(search_bucket, hosts, tmp_path):
    host = hosts("web", SEARCH_FILES_BUCKET="search-files", SEARCH_FILES_ENDPOINT_URL=search_bucket)
    for build_id in (1, 2, 3):
        publish(build_id)
        assert build_of(host.serve(centres()[build_id - 1])) == build_id

    assert stored_keys(search_bucket) == [
        "builds/2/build-2.ann",
        "builds/2/build-2.ids.npy",
        "builds/2/build-2.neighbours.npy",
        "builds/3/build-3.ann",
        "builds/3/build-3.ids.npy",
        "builds/3/build-3.neighbours.npy",
        "current.json",
    ]
    assert not (tmp_path / "index" / "builds").exists()  # nothing in the local folder


@pytest.mark.django_db
def test_model_version_weights_are_stored_and_read_through_a_local_copy(search_bucket, settings, tmp_path):
    weights = HeadWeights(
        {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)},
        {"article_type": ["Shirts", "Watches"]},
        4.0,
        0.5,
    )
    name = search_files.store_version_weights(7, weights.save)
    assert name.startswith("version-7-") and stored_keys(search_bucket) == [f"versions/{name}"]

    settings.INDEX_CACHE_DIR = tmp_path / "web-cache"  # another host
    version = ModelVersion.objects.create(
        backbone="efficientnet_lite0", status=ModelVersion.Status.READY, weights_file=name
    )
    head = version_space(version).head
    assert head.classes == weights.classes
    np.testing.assert_array_equal(head.arrays["kernel"], weights.arrays["kernel"])
    assert (tmp_path / "web-cache" / "versions" / name).is_file()
