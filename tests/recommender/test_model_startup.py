"""The photo-search model at process start: web processes load it when they start (never
at the first upload) and never convert it; a worker converts it when it starts; until
the model exists photo search answers 503 with Retry-After, and works once it appears."""

import os
import subprocess
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from recommender import active_model, tasks
from recommender.embedding import efficientnet_lite
from recommender.photo_search import PHOTO_SEARCH_STARTING
from tests.images import garment_photo
from tests.recommender.test_inference_runtime import PROJECT, run_web_process

pytestmark = pytest.mark.django_db

NAME = efficientnet_lite.NAME


@pytest.fixture(scope="module")
def converted():
    """The converted model file of the shared model cache (converted once if needed)."""
    return [active_model.convert_model()]


@pytest.fixture
def web_process_without_model(settings, tmp_path, monkeypatch):
    """This process as a web process (preload_embedder was called) over an empty model cache."""
    settings.MODEL_CACHE_DIR = tmp_path / "models"
    monkeypatch.setattr(active_model, "_may_convert", True)  # restored after the test
    assert active_model.preload_embedder() is None
    return settings.MODEL_CACHE_DIR


def photo():
    return SimpleUploadedFile("photo.jpg", garment_photo((30, 60, 200)), content_type="image/jpeg")


def test_photo_search_answers_503_until_the_model_is_converted_then_works(
    client, web_process_without_model, converted
):
    page = client.post("/visual/search/", {"photo": photo()})
    api = APIClient().post("/api/search/image", {"image": photo()}, format="multipart")

    assert page.status_code == 503 and page["Retry-After"] == "60"
    assert PHOTO_SEARCH_STARTING in page.content.decode()
    assert api.status_code == 503 and api["Retry-After"] == "60"
    assert api.json()["detail"] == PHOTO_SEARCH_STARTING
    assert not web_process_without_model.exists()  # the web process converted nothing

    # The worker's file appears: the next search loads it, no restart needed.
    web_process_without_model.mkdir()
    for path in converted:
        os.symlink(path, web_process_without_model / path.name)
    assert client.post("/visual/search/", {"photo": photo()}).status_code == 200
    assert APIClient().post("/api/search/image", {"image": photo()}, format="multipart").status_code == 200


STARTED_BY_WSGI = """
import json, sys, django
import numpy as np
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from recommender import annoy_index
from recommender.refresh import rebuild_index
from tests.factories import EmbeddingFactory
for i in range(8):
    EmbeddingFactory(cnn=np.eye(8, 16, dtype=np.float32)[i] + 1)
rebuild_index()
annoy_index.forget_loaded_index()  # as in a new process

import config.wsgi
from recommender.embedding import litert_model
print(json.dumps({"loaded": [type(model).__name__ for model in litert_model._loaded.values()],
                  "index_items": len(annoy_index._state["index"] or []),
                  "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.mark.slow
def test_a_web_process_loads_the_model_and_the_index_when_it_starts(tmp_path, converted):
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    for path in converted:
        os.symlink(path, models / path.name)

    result = run_web_process(tmp_path, STARTED_BY_WSGI)

    assert result == {"loaded": ["LiteRTEmbedder"], "index_items": 8, "tensorflow": False}


@pytest.mark.slow
def test_a_worker_converts_the_model_when_it_starts_in_a_child_process(settings, tmp_path, monkeypatch):
    # The conversion runs in `manage.py prepare_model`, which reads DATA_DIR like any process.
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    settings.MODEL_CACHE_DIR = tmp_path / "models"
    before = set(sys.modules)

    thread = tasks.convert_model_at_start()
    thread.join(timeout=600)

    assert active_model.model_is_converted()
    assert "tensorflow" not in set(sys.modules) - before  # not imported by this process
    assert tasks.convert_model_at_start() is None  # converted: nothing to do at the next start


def test_prepare_model_command_reports_an_unusable_configuration():
    result = subprocess.run(
        [sys.executable, "manage.py", "prepare_model"],
        cwd=PROJECT,
        env={**os.environ, "EMBEDDING_MODEL": "resnet50", "RESNET50_WEIGHTS_PATH": "/nonexistent/weights.h5"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "RESNET50_WEIGHTS_PATH points at /nonexistent/weights.h5" in result.stderr
    assert "Traceback" not in result.stderr
