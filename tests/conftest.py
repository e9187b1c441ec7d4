"""Fixtures shared by the whole suite."""
from pathlib import Path

import pytest

from tests.factories import ProductFactory, UserFactory

SHARED_DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
FASHION_DEV = SHARED_DATASETS / "fashion-small-dev"
CLOTHING_PHOTOS = SHARED_DATASETS / "clothing-photos"


@pytest.fixture
def fashion_dev():
    """The real 4,395-product catalogue sample (skips when the shared folder is absent)."""
    if not (FASHION_DEV / "styles.csv").exists():
        pytest.skip(f"real catalogue sample not found at {FASHION_DEV}")
    return FASHION_DEV


@pytest.fixture
def clothing_photos():
    """Real shopper photos (skips when the shared folder is absent)."""
    if not (CLOTHING_PHOTOS / "images.csv").exists():
        pytest.skip(f"shopper photos not found at {CLOTHING_PHOTOS}")
    return CLOTHING_PHOTOS


@pytest.fixture(autouse=True)
def fresh_index_dir(settings, tmp_path):
    """Each test gets its own index folder, no loaded build and an empty cache."""
    from django.core.cache import cache

    from recommender import index as annoy_index

    settings.INDEX_DIR = tmp_path / "index"
    annoy_index.forget_loaded_index()
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
