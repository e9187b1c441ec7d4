"""Fixtures shared by the whole suite."""

from pathlib import Path

import numpy as np
import pytest
from django.core.cache import cache

from recommender import active_model, annoy_index, search_space
from tests.factories import SHIPPING, EmbeddingFactory, ProductFactory, UserFactory
from tests.servers import RedisServer, free_port

# Vectors of the real catalogue sample and shopper photos, computed once per test run.
pytest_plugins = ["tests.recommender.quality_fixtures"]

SHARED_DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
FASHION_DEV = SHARED_DATASETS / "fashion-small-dev"
CLOTHING_PHOTOS = SHARED_DATASETS / "clothing-photos"


@pytest.fixture(scope="session")
def fashion_dev():
    """The real 4,395-product catalogue sample (skips when the shared folder is absent)."""
    if not (FASHION_DEV / "styles.csv").exists():
        pytest.skip(f"real catalogue sample not found at {FASHION_DEV}")
    return FASHION_DEV


@pytest.fixture(scope="session")
def clothing_photos():
    """Real shopper photos (skips when the shared folder is absent)."""
    if not (CLOTHING_PHOTOS / "images.csv").exists():
        pytest.skip(f"shopper photos not found at {CLOTHING_PHOTOS}")
    return CLOTHING_PHOTOS


@pytest.fixture(autouse=True)
def fresh_index_dir(settings, tmp_path):
    """Each test gets its own index folder and host copy of it, no loaded build and an
    empty cache."""
    settings.INDEX_DIR = tmp_path / "index"
    settings.INDEX_CACHE_DIR = tmp_path / "index-cache"
    annoy_index.forget_loaded_index()
    search_space.forget_loaded_spaces()
    cache.clear()
    yield settings.INDEX_DIR
    annoy_index.forget_loaded_index()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def product(db):
    return ProductFactory()


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def shipping():
    """Shipping details as the checkout form and the orders API take them (a copy to change)."""
    return dict(SHIPPING)


@pytest.fixture
def clustered_catalogue(db):
    """30 products in three tight clusters of vectors (10 each), all with the same colour."""
    rng = np.random.default_rng(7)
    centres = np.eye(3, 16, dtype=np.float32) * 10
    products = []
    for cluster, centre in enumerate(centres):
        for _ in range(10):
            product = ProductFactory(article_type=f"type{cluster}")
            EmbeddingFactory(product=product, cnn=centre + rng.normal(0, 0.5, 16))
            products.append(product)
    return products


@pytest.fixture
def no_cnn(monkeypatch):
    """Fails the test if anything asks for the CNN."""

    def refuse():
        raise AssertionError("the CNN was loaded")

    monkeypatch.setattr(active_model, "get_embedder", refuse)


@pytest.fixture
def media_root(settings, tmp_path):
    """A fresh, empty media folder for this test, so stored files can be counted."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def unused_port():
    """A TCP port on loopback that nothing listens on (for servers a test starts)."""
    return free_port()


@pytest.fixture
def redis_server(tmp_path):
    """A running redis-server of this test's own, to stop or freeze mid-test."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()
