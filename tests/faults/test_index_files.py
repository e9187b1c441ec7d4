"""The Annoy index file deleted or truncated under a running web server (gunicorn, services
mode on Redis), in the search files store or in the server's own copy: pages and the
similar-products API keep answering; when no host could load the published build, they
answer from the stored vectors and a rebuild is asked for, and once it has run the new
build is served again.

Annoy memory-maps its file; a process that reads a mapped file truncated under it dies of
SIGBUS, so the server runs in its own process, and a crash fails the test instead of
killing the test run.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import pytest
from django.core.cache import cache
from django.db.models import F

from catalog.models import Product
from config.celery import app as celery_app
from recommender import annoy_index
from recommender.models import IndexBuild
from recommender.queueing import REBUILD_PENDING_KEY, REBUILD_TASK
from recommender.refresh import rebuild_index
from recommender.search_space import active_space
from recommender.vector_store import current_embeddings, current_model_name, exact_neighbours, stored_vectors
from tests.servers import Gunicorn
from tests.workers import PROJECT, process_env, queued_tasks, redis_client, services_mode

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = "redis://127.0.0.1:6379/14"
VISIBILITY_TIMEOUT = 30
# The clustered catalogue has 10 products of each type: asking for more than that is more
# than the stored lists can answer.
FAR_TYPE, FAR_K = "type1", 12


def truncate_to_zero(path):
    os.truncate(path, 0)


def truncate_to_half(path):
    os.truncate(path, path.stat().st_size // 2)


def delete(path):
    path.unlink()


DAMAGE = {"truncated to 0 bytes": truncate_to_zero, "truncated to half": truncate_to_half, "deleted": delete}


class WebServer:
    """gunicorn serving the test's database, index folder (the search files store) and
    Redis, in its own process, with a cache folder of its own."""

    def __init__(self, folder, index_dir):
        self.folder = folder
        self.index_dir = index_dir
        self.cache_dir = folder / "index-cache"
        self.log_path = folder / "gunicorn.log"
        self.process = None

    def start(self, env):
        options = ("--workers=1", "--timeout=120", "--error-logfile=-")
        self.server = Gunicorn(env, self.log_path, *options, timeout=120).start()
        self.process = self.server.process

    def get(self, path):
        """(status, body) of a GET; connection failures raise."""
        try:
            with urllib.request.urlopen(f"{self.server.url}{path}", timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def copy_of(self, build, suffix=".ann"):
        """The server's own copy of one of the build's files."""
        (path,) = self.cache_dir.glob(f"builds/build-{build.pk}-*/build-{build.pk}{suffix}")
        return path

    def log(self, since=0):
        return self.log_path.read_bytes()[since:].decode(errors="replace")[-5000:]

    def log_size(self):
        return self.log_path.stat().st_size

    def stop(self):
        if self.process:
            self.server.stop()


@pytest.fixture(scope="module")
def web_server(django_db_setup, tmp_path_factory):
    from django.conf import settings as django_settings

    folder = tmp_path_factory.mktemp("web")
    server = WebServer(folder, folder / "index")
    try:
        redis_client(REDIS_URL).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    env = process_env(
        REDIS_URL,
        VISIBILITY_TIMEOUT,
        INDEX_DIR=server.index_dir,
        INDEX_CACHE_DIR=server.cache_dir,
        MEDIA_ROOT=folder / "media",
        TEST_DATA_DIR=django_settings.TEST_DATA_DIR,
        INDEX_REBUILD_DELAY=2,
        LOG_LEVEL="INFO",
    )
    server.start(env)
    yield server
    server.stop()


@pytest.fixture
def serving(settings, web_server):
    """This process as the server's worker and admin: same index folder, same Redis."""
    with services_mode(settings, REDIS_URL, VISIBILITY_TIMEOUT):
        shutil.rmtree(web_server.index_dir, ignore_errors=True)
        settings.INDEX_DIR = web_server.index_dir
        # The rebuild this process runs as a worker starts when the test says, not spaced
        # after the build made just before.
        settings.INDEX_REBUILD_DELAY = 0
        # With nothing published the server drops the build of the previous test.
        web_server.get("/health/ready/")
        start = web_server.log_size()
        yield web_server
        log = web_server.log(since=start)
        assert web_server.process.poll() is None, f"the web server died:\n{log}"
        assert "was sent SIG" not in log, f"the web worker crashed:\n{log}"


def exactly_similar(product, article_type=None, k=5):
    """Ids of the k products nearest to ``product`` by exact search over stored vectors."""
    space = active_space(current_model_name())
    ids, vectors = stored_vectors(current_embeddings(), space)
    query = vectors[list(ids).index(product.pk)]
    kept = set(
        Product.objects.filter(article_type=article_type or F("article_type")).values_list("pk", flat=True)
    )
    ranked = [pk for pk, _ in exact_neighbours(query, ids, vectors, len(ids)) if pk != product.pk]
    return [pk for pk in ranked if pk in kept][:k]


def similar_from_api(server, product, query=""):
    status, body = server.get(f"/api/products/{product.pk}/similar/{query}")
    assert status == 200
    return [item["id"] for item in json.loads(body)["results"]]


def answers(server, product):
    """What the product page and the API show: the stored neighbour lists of the build
    answer the first two; the third asks for more of another type than those lists hold,
    so it queries the Annoy file itself."""
    return {
        "page": similar_on_page(server, product),
        "api": similar_from_api(server, product),
        "api, other type": similar_from_api(server, product, f"?k={FAR_K}&articleType={FAR_TYPE}"),
    }


def similar_on_page(server, product):
    status, body = server.get(f"/products/{product.pk}/")
    assert status == 200
    section = body.split('id="similar-title"', 1)[1]
    return [int(pk) for pk in dict.fromkeys(re.findall(r'href="/products/(\d+)/"', section))]


def rebuild_requests(broker):
    return [message for message in queued_tasks(broker) if message.task == REBUILD_TASK]


def run_queued_rebuild(broker):
    """Take the queued rebuild off the broker and run it, as a worker would."""
    (message,) = rebuild_requests(broker)
    broker.delete("celery")
    celery_app.tasks[message.task].apply(args=message.args).get()


def in_the_store(server, build, damage):
    DAMAGE[damage](server.index_dir / build.file_name)


def in_the_servers_copy(server, build, damage):
    DAMAGE[damage](server.copy_of(build))


# (where, loaded first, damage): the server has loaded the build or not when its file is damaged.
CASES = {"store, before the first load, " + damage: (in_the_store, False, damage) for damage in DAMAGE} | {
    "store, while loaded, deleted": (in_the_store, True, "deleted"),
    "server's copy, while loaded, truncated to 0 bytes": (in_the_servers_copy, True, "truncated to 0 bytes"),
    "server's copy, while loaded, truncated to half": (in_the_servers_copy, True, "truncated to half"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_index_file_is_searched_around_and_rebuilt(serving, clustered_catalogue, case):
    where, loaded_first, damage = CASES[case]
    broker = redis_client(REDIS_URL)
    product = clustered_catalogue[0]  # of type0
    nearest = exactly_similar(product)
    expected = {"page": nearest, "api": nearest, "api, other type": exactly_similar(product, FAR_TYPE, FAR_K)}
    build = rebuild_index()
    if loaded_first:
        assert answers(serving, product) == expected
        assert not rebuild_requests(broker), "a whole build should be served as it is"

    where(serving, build, damage)

    for _ in range(2):  # every request answers
        assert answers(serving, product) == expected
    if loaded_first:
        # The server goes on with the copy it loaded: no fallback, no rebuild asked for.
        assert not rebuild_requests(broker)
        status, report = serving.get("/health/ready/?format=json")
        if where is in_the_store:  # a host starting now could not serve it
            assert status == 503 and "missing or truncated in the search files store" in report
        else:  # the store is whole: another process of this host copies the build again
            assert status == 200 and f"build {build.pk}, 30 products" in report
        return

    # Nothing could be loaded: answered from the stored vectors, and a rebuild asked for.
    assert len(rebuild_requests(broker)) == 1  # asked for once (debounced)
    assert cache.get(REBUILD_PENDING_KEY)

    run_queued_rebuild(broker)
    rebuilt = IndexBuild.objects.filter(status=IndexBuild.Status.READY).first()
    assert rebuilt.pk != build.pk
    assert answers(serving, product) == expected
    # Served from the new build: no fallback, so nothing asked for a rebuild again.
    assert not rebuild_requests(broker)
    assert not cache.get(REBUILD_PENDING_KEY)


CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path

    import django

    django.setup()
    import numpy as np
    from recommender import annoy_index

    build = annoy_index.current_index()  # copied to this host's cache folder, and loaded
    (ann,) = Path(os.environ["INDEX_CACHE_DIR"]).glob("builds/*/" + build.metadata["ann"])
    os.truncate(ann, int(ann.stat().st_size * {fraction}))
    build = annoy_index.current_index()
    hits = build.neighbours_of_vector(np.ones(build.dimensions, dtype=np.float32), 5, search_k=1000)
    print(len(hits), build.stored_neighbours(int(build.product_ids[0]))[:1])
    """
)


@pytest.mark.parametrize("fraction", [0, 0.5], ids=["to 0 bytes", "to half"])
def test_a_loaded_build_survives_its_file_being_truncated_during_queries(
    clustered_catalogue, fresh_index_dir, fraction, tmp_path
):
    """The process never maps its host's copy of the file itself, so queries run on intact
    data; other hosts, with copies of their own, are not affected either."""
    rebuild_index()
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(fraction=fraction)],
        cwd=PROJECT,
        env=dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="config.settings.test",
            INDEX_DIR=str(fresh_index_dir),
            INDEX_CACHE_DIR=str(tmp_path / "child-cache"),
            TEST_DATA_DIR=str(tmp_path / "child-data"),
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, f"exit {child.returncode} (-7 is SIGBUS):\n{child.stderr}"
    assert child.stdout.startswith("5 ")
    assert len(annoy_index.current_index()) == 30
