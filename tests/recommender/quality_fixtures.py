"""Vectors of the real catalogue sample and shopper photos, computed once per test run.

Embedding the 4,395 catalogue photos takes a minute or two, so these fixtures are
session-scoped and shared by every test that asks for them. tests/conftest.py loads
this module as a plugin (``pytest_plugins``): ask for the fixtures by name.
"""

import pytest

from quality import evaluation


@pytest.fixture(scope="session")
def dev_catalogue(fashion_dev):
    """Vectors, article types and colours of the real catalogue sample."""
    return evaluation.embed_catalogue_sample(fashion_dev)


@pytest.fixture(scope="session")
def shopper_photos(clothing_photos):
    """Vectors and labels of the real shopper photos of adults' clothes."""
    return evaluation.embed_shopper_photos(clothing_photos)
