"""Product pages and similar items keep answering while the index is rebuilt and swapped.

gunicorn serves the shop from its own copies of the builds published in the index folder
(the search files store); client threads request product pages and
/api/products/<id>/similar/ for a bounded time while another thread rebuilds the index
again and again (as a worker would) and stores newer vectors between builds. Vectors are
made without the CNN: three tight clusters, so the right neighbours are known.
"""

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from django.db import connection

from catalog.models import Product
from recommender.models import IndexBuild
from recommender.refresh import rebuild_index
from tests.factories import EmbeddingFactory, ProductFactory
from tests.shop.gunicorn_server import gunicorn

pytestmark = pytest.mark.django_db(transaction=True)

CLUSTERS = 3
PER_CLUSTER = 15
CLIENT_THREADS = 6
SECONDS = 10
SIMILAR_LINK = re.compile(r'class="product-card__link" href="/products/(\d+)/"')


@pytest.fixture
def catalogue():
    """{product id: cluster} for 45 products in three tight clusters of 16-d vectors."""
    rng = np.random.default_rng(3)
    centres = np.eye(CLUSTERS, 16, dtype=np.float32) * 10
    clusters = {}
    for cluster, centre in enumerate(centres):
        for _ in range(PER_CLUSTER):
            product = ProductFactory(article_type=f"type{cluster}", stock=50)
            EmbeddingFactory(product=product, cnn=centre + rng.normal(0, 0.5, 16))
            clusters[product.pk] = cluster
    return clusters


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def similar_section(html):
    start = html.find('id="similar-title"')
    return html[start : html.find("</section>", start)] if start >= 0 else ""


def keep_rebuilding(clusters, stop, builds, failures):
    """Rebuild until told to stop; between builds some products get newer vectors."""
    rng = np.random.default_rng(11)
    centres = np.eye(CLUSTERS, 16, dtype=np.float32) * 10
    products = Product.objects.in_bulk(sorted(clusters))
    try:
        while not stop.is_set():
            for pk in rng.choice(sorted(products), 3, replace=False):
                EmbeddingFactory(product=products[pk], cnn=centres[clusters[pk]] + rng.normal(0, 0.5, 16))
            builds.append(rebuild_index())
    except Exception as exc:  # noqa: BLE001  (reported by the test)
        failures.append(f"rebuild: {exc!r}")
    finally:
        connection.close()


def test_pages_and_similar_items_answer_during_rebuilds(catalogue, no_cnn, fresh_index_dir, tmp_path):
    rebuild_index()
    stop, builds, failures = threading.Event(), [], []
    served = Counter()

    def browse(worker):
        ids = sorted(catalogue)[worker::CLIENT_THREADS]
        turn = 0
        while not stop.is_set():
            pk = ids[turn % len(ids)]
            turn += 1
            status, html = get(f"{base_url}/products/{pk}/")
            shown = [int(other) for other in SIMILAR_LINK.findall(similar_section(html))]
            if status != 200 or not shown or pk in shown or {catalogue[o] for o in shown} != {catalogue[pk]}:
                failures.append(f"page {pk}: {status}, similar {shown}")
            served["page"] += 1
            status, body = get(f"{base_url}/api/products/{pk}/similar/")
            found = [item["id"] for item in json.loads(body).get("results", [])] if status == 200 else []
            if status != 200 or not found or pk in found or {catalogue[o] for o in found} != {catalogue[pk]}:
                failures.append(f"similar {pk}: {status}, {body[:200]}")
            served["similar"] += 1

    with gunicorn(tmp_path, index_dir=fresh_index_dir) as base_url:
        rebuilder = threading.Thread(target=keep_rebuilding, args=(catalogue, stop, builds, failures))
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            browsing = [pool.submit(browse, worker) for worker in range(CLIENT_THREADS)]
            rebuilder.start()
            time.sleep(SECONDS)
            stop.set()
            for future in browsing:
                future.result()
        rebuilder.join(timeout=60)
        # The server is a host of its own: it serves a copy of the newest build from its
        # cache folder (its TEST_DATA_DIR), fetched from the shared store.
        status, _ = get(f"{base_url}/api/products/{sorted(catalogue)[0]}/similar/")
        copies = [path.name for path in (tmp_path / "index-cache").glob("builds/*")]

    print(
        f"\n{dict(served)} requests served during {len(builds)} rebuilds in {SECONDS} s; failures: {len(failures)}"
    )
    assert failures == []
    assert len(builds) >= 3
    assert all(build.status == IndexBuild.Status.READY for build in builds)
    assert status == 200 and any(name.startswith(f"build-{builds[-1].pk}-") for name in copies), copies
    assert served["page"] >= 20 and served["similar"] >= 20
