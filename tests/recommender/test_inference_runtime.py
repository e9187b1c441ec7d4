"""The CNN served from the LiteRT file: same features as Keras, no TensorFlow in web
processes, converted again when the weights change."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from recommender import active_model
from recommender.embedding import (
    ModelNotConverted,
    convert_model,
    converted_model_path,
    efficientnet_lite,
    litert_model,
    load_embedder,
    prepare_image,
)
from recommender.embedding.embedder import batch_sizes, build_keras_embedder, load_keras_embedder
from recommender.embedding.litert_model import MAX_DIFFERENCE, ConversionFailed, LiteRTEmbedder, check_images
from recommender.embedding.weights import file_fingerprint, read_legacy_state_dict
from tests.images import garment_photo
from tests.recommender.fixtures.reference_image import reference_photo_png

PROJECT = Path(__file__).resolve().parents[2]
NAME = efficientnet_lite.NAME


@pytest.fixture(scope="module")
def served():
    """The model as the shop serves it (converted into the model cache once, if needed)."""
    embedder = active_model.get_embedder()
    assert isinstance(embedder, LiteRTEmbedder)
    return embedder


@pytest.fixture(scope="module")
def keras():
    return load_keras_embedder(NAME, cache_dir=settings.MODEL_CACHE_DIR)


def largest_difference(served, keras, images, batch_size):
    ours = served.embed_images(images, batch_size=batch_size)
    theirs = keras.embed_images(images, batch_size=batch_size)
    assert ours.shape == theirs.shape == (len(images), 1280) and ours.dtype == np.float32
    # Real features, not a degenerate model that agrees by being zero.
    assert theirs.std() > 0.1
    return float(np.abs(ours - theirs).max())


@pytest.mark.slow
def test_served_model_matches_keras_on_catalogue_photos(served, keras, fashion_dev):
    paths = sorted((fashion_dev / "images").glob("*.jpg"))[:64]
    photos = np.stack([prepare_image(path) for path in paths])

    assert largest_difference(served, keras, photos, batch_size=32) <= MAX_DIFFERENCE
    assert largest_difference(served, keras, photos[:4], batch_size=1) <= MAX_DIFFERENCE


@pytest.mark.slow
def test_served_model_matches_keras_on_generated_images(served, keras):
    drawn = [prepare_image(reference_photo_png())] + [
        prepare_image(garment_photo(colour)) for colour in [(200, 30, 30), (30, 60, 200), (20, 20, 20)]
    ]
    images = np.concatenate([check_images(8, seed=1), np.stack(drawn)])

    assert largest_difference(served, keras, images, batch_size=5) <= MAX_DIFFERENCE
    np.testing.assert_array_equal(served.classify(drawn[:1], top=1), keras.classify(drawn[:1], top=1))


def changed_weights_file(folder):
    """A copy of the packaged PyTorch weights with the last batch norm's bias moved by 0.5."""
    source = efficientnet_lite.pytorch_weights_path()
    data = bytearray(source.read_bytes())
    tensor = read_legacy_state_dict(source)["_bn1.bias"]
    offset = data.find(tensor.astype("<f4").tobytes())
    assert offset > 0
    data[offset : offset + tensor.nbytes] = (tensor + 0.5).astype("<f4").tobytes()
    path = folder / "changed-weights.pth"
    path.write_bytes(data)
    return path


@pytest.mark.slow
def test_new_weights_are_converted_again_and_the_same_weights_are_not(served, tmp_path, monkeypatch, capsys):
    cache_dir = tmp_path / "models"
    changed = changed_weights_file(tmp_path)
    monkeypatch.setattr(efficientnet_lite, "pytorch_weights_path", lambda: changed)
    # A converter that got it wrong (here: the old weights' file) is caught before use.
    with monkeypatch.context() as patch:
        patch.setattr(litert_model, "_to_litert", lambda model: served.path.read_bytes())
        with pytest.raises(ConversionFailed, match="differs from Keras"):
            convert_model(NAME, cache_dir=cache_dir)
    assert [path.suffix for path in cache_dir.iterdir()] == [".h5"]

    capsys.readouterr()
    new_path = convert_model(NAME, cache_dir=cache_dir)

    assert capsys.readouterr().out == ""  # a command's output stays its own (Keras prints there)
    assert new_path.parent == cache_dir and new_path.name != served.path.name
    new = load_embedder(NAME, cache_dir=cache_dir, convert=False)
    images = check_images(4)
    assert np.abs(new.embed_images(images) - served.embed_images(images)).max() > 0.01
    # ... and computes what Keras computes with the new weights (their Keras file is cached).
    assert (
        largest_difference(new, build_keras_embedder(NAME, cache_dir=cache_dir), images, 4) <= MAX_DIFFERENCE
    )

    def no_conversion(model):
        raise AssertionError("converted again although the weights did not change")

    monkeypatch.setattr(litert_model, "_to_litert", no_conversion)
    assert convert_model(NAME, cache_dir=cache_dir) == new_path
    assert sorted(path.suffix for path in cache_dir.iterdir()) == [".h5", ".tflite"]


WEB_PROCESS = """
import io, json, sys, django
django.setup()
from django.conf import settings
from django.core.management import call_command
call_command("migrate", verbosity=0)
from catalog.demo import demo_products, draw_product, import_demo_catalogue
from recommender import active_model
from recommender.photo_search import search_by_photo

preloaded = active_model.preload_embedder()
import_demo_catalogue(40)
call_command("embed_catalog", verbosity=0)

def jpeg(image):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()

photos = [jpeg(draw_product(product)) for product in demo_products(6, seed=99)]
served = [[product.pk for product in search_by_photo(photo)] for photo in photos]
result = {"preloaded": type(preloaded).__name__, "tensorflow": "tensorflow" in sys.modules, "served": served}

# The Keras path, on the same catalogue: TensorFlow is loaded from here on.
from recommender.embedding.embedder import load_keras_embedder
keras = load_keras_embedder("efficientnet_lite0", cache_dir=settings.MODEL_CACHE_DIR)
active_model.get_embedder = lambda: keras
result["keras"] = [[product.pk for product in search_by_photo(photo)] for photo in photos]
print(json.dumps(result))
"""


def run_web_process(tmp_path, script):
    """Run ``script`` in a fresh process with the test settings and its own files; the
    model cache is ``tmp_path / "data" / "models"``."""
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TEST_DATA_DIR": str(tmp_path),
        "DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_photo_search_in_a_web_process_runs_without_tensorflow_and_finds_what_keras_finds(served, tmp_path):
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    for source in settings.MODEL_CACHE_DIR.iterdir():  # the converted file, and Keras' weights
        if source.name.startswith(NAME) and source.suffix in (".tflite", ".h5"):
            os.symlink(source, models / source.name)

    result = run_web_process(tmp_path, WEB_PROCESS)

    assert result["preloaded"] == "LiteRTEmbedder"
    assert result["tensorflow"] is False
    assert all(len(found) == 5 for found in result["served"])
    assert result["served"] == result["keras"]


PRELOADED_THEN_FORKED = """
import json, os, sys
import numpy as np
from recommender.embedding import load_embedder
from recommender.embedding.litert_model import check_images
embedder = load_embedder("efficientnet_lite0", cache_dir=sys.argv[1], convert=False)
images = check_images(3)
before = embedder.embed_images(images)
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, embedder.embed_images(images).tobytes())
    os._exit(0)
os.close(write)
data = b""
while chunk := os.read(read, 1 << 16):
    data += chunk
os.waitpid(pid, 0)
child = np.frombuffer(data, np.float32).reshape(before.shape)
print(json.dumps({"difference": float(np.abs(child - before).max()), "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.mark.slow
def test_a_model_loaded_before_the_server_forks_runs_in_the_forked_workers(served):
    # gunicorn --preload: the master loads the model, its workers are forked from it.
    result = subprocess.run(
        [sys.executable, "-c", PRELOADED_THEN_FORKED, str(served.path.parent)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"difference": 0.0, "tensorflow": False}


def test_a_web_process_without_the_converted_model_neither_converts_nor_imports_tensorflow(tmp_path):
    script = f"""
import json, os, sys, django
django.setup()
from django.conf import settings
from recommender import active_model
from recommender.embedding import ModelNotConverted
from recommender.photo_search import read_photo
preloaded = active_model.preload_embedder()
try:
    read_photo({garment_photo((200, 30, 30))!r})
    refused = False
except ModelNotConverted:
    refused = True
models = settings.MODEL_CACHE_DIR
print(json.dumps({{"preloaded": preloaded is None, "refused": refused, "tensorflow": "tensorflow" in sys.modules,
    "files": sorted(os.listdir(models)) if models.exists() else []}}))
"""
    result = run_web_process(tmp_path, script)

    assert result == {"preloaded": True, "refused": True, "tensorflow": False, "files": []}


def test_an_unreadable_converted_file_is_not_used_and_not_replaced_without_conversion(tmp_path):
    path = converted_model_path(NAME, cache_dir=tmp_path)
    path.write_bytes(b"half-written file")

    with pytest.raises(ModelNotConverted, match="unreadable"):
        load_embedder(NAME, cache_dir=tmp_path, convert=False)
    assert path.read_bytes() == b"half-written file"


def test_converted_files_are_named_by_the_weights_they_come_from(tmp_path, monkeypatch):
    packaged = converted_model_path(NAME, cache_dir=tmp_path)
    other = tmp_path / "other-weights.pth"
    data = efficientnet_lite.pytorch_weights_path().read_bytes()
    other.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    monkeypatch.setattr(efficientnet_lite, "pytorch_weights_path", lambda: other)

    renamed = converted_model_path(NAME, cache_dir=tmp_path)

    assert renamed != packaged
    assert renamed.name.startswith(f"{NAME}-{file_fingerprint(other)[:12]}-")


def test_runtimes_without_traced_graphs_run_the_last_batch_unpadded():
    assert batch_sizes(0, 16) == []
    assert batch_sizes(3, 16) == [3]
    assert batch_sizes(37, 16) == [16, 16, 5]


@pytest.mark.parametrize(
    "setting, web_process, threads", [(0, False, None), (0, True, 1), (3, True, 3), (1, False, 1)]
)
def test_web_processes_run_the_model_on_one_thread_unless_set(
    served, settings, monkeypatch, setting, web_process, threads
):
    threads_asked = []
    make = LiteRTEmbedder.__init__

    def recording(self, name, dim, path, threads=None):
        threads_asked.append(threads)
        make(self, name, dim, path, threads)

    monkeypatch.setattr(LiteRTEmbedder, "__init__", recording)
    # Loaded models other than the one served are forgotten for this test.
    monkeypatch.setattr(
        litert_model, "_loaded", {k: v for k, v in litert_model._loaded.items() if v is served}
    )
    monkeypatch.setattr(active_model, "_may_convert", not web_process)
    settings.INFERENCE_THREADS = setting

    embedder = active_model.get_embedder()

    assert threads_asked == ([] if threads is None else [threads])  # None: the one served already
    images = check_images(4)
    assert np.abs(embedder.embed_images(images) - served.embed_images(images)).max() <= 1e-5
