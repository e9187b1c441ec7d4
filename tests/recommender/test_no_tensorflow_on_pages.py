"""Product pages, the catalogue and the similar-items API never load TensorFlow."""

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, numpy as np, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from recommender.refresh import rebuild_index
from tests.factories import EmbeddingFactory, ProductFactory
products = ProductFactory.create_batch(8)
for i, product in enumerate(products):
    EmbeddingFactory(product=product, cnn=np.eye(8, 16, dtype=np.float32)[i] + 1)
rebuild_index()
client = Client()
for url in ["/", products[0].get_absolute_url(), f"/api/products/{products[0].pk}/similar/", "/cart/"]:
    assert client.get(url).status_code == 200, url
print("similar", len(client.get(f"/api/products/{products[0].pk}/similar/").json()["results"]))
print("tensorflow loaded:", "tensorflow" in sys.modules)
"""


@pytest.mark.slow
def test_pages_and_similar_items_do_not_import_tensorflow(tmp_path):
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TEST_DATA_DIR": str(tmp_path),
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "similar 5" in result.stdout
    assert "tensorflow loaded: False" in result.stdout
