"""Vectors of the real catalogue sample and shopper photos, computed once per test run.

Embedding the 4,395 catalogue photos takes a minute or two, so the result is kept in the
pytest session's stash and shared by every test that asks for it. Import the fixtures
into a test module to use them.
"""
import pytest

from recommender import evaluation

_VECTORS = pytest.StashKey[dict]()


def _session_vectors(request, name, compute):
    store = request.config.stash.setdefault(_VECTORS, {})
    if name not in store:
        store[name] = compute()
    return store[name]


@pytest.fixture
def dev_catalogue(request, fashion_dev):
    """Vectors, article types and colours of the real catalogue sample."""
    return _session_vectors(request, "catalogue", lambda: evaluation.embed_catalogue_sample(fashion_dev))


@pytest.fixture
def shopper_photos(request, clothing_photos):
    """Vectors and labels of the real shopper photos of adults' clothes."""
    return _session_vectors(
        request, "shopper_photos", lambda: evaluation.embed_shopper_photos(clothing_photos)
    )
