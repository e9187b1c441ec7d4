"""The CNN converted to a LiteRT (TensorFlow Lite) file, run without TensorFlow.

The network is defined, and its weights converted, in Keras (:mod:`.embedder`). Serving
it with TensorFlow costs seconds of import and ~600 MB per process; the LiteRT interpreter
imports in milliseconds, keeps ~100 MB and runs a photo 2-3x faster, with features within
1e-4 of Keras' (bench/bench_inference.py). So :func:`convert_model` turns the Keras model
into a file once per weights file, in a process that may import TensorFlow (a worker, a
command), and :func:`load_embedder` only reads that file.

The file takes the uint8 images :func:`prepare_image` returns (the model's input scaling
is inside it) and gives the pooled features and, with the ImageNet classifier, its logits.
"""

import contextlib
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from . import efficientnet_lite
from .embedder import Embedder, EmbedderUnavailable, build_keras_embedder, check_name
from .preprocessing import IMAGE_SIZE
from .vector_math import usable_cores
from .weights import file_fingerprint

logger = logging.getLogger(__name__)

# Part of the file name: bump it when the exported graph changes so a stale file is never used.
EXPORT_REVISION = 1
# A converted file whose features differ from Keras' by more than this is refused.
MAX_DIFFERENCE = 1e-4
SIGNATURE_INPUT = "image"


class ModelNotConverted(EmbedderUnavailable):
    """The converted file is missing and this process may not convert it (no TensorFlow here)."""


class ConversionFailed(RuntimeError):
    """The converted model does not compute what the Keras model computes."""


def converted_model_path(name, *, cache_dir, resnet50_weights=None) -> Path:
    """Where the converted model lives in ``cache_dir``. The name holds a fingerprint of the
    weights it was made from, so new weights (or a new conversion) get a new file."""
    check_name(name)
    if name == "resnet50":
        if not resnet50_weights or not Path(resnet50_weights).is_file():
            raise EmbedderUnavailable(f"the ResNet50 weights file {resnet50_weights!r} does not exist")
        return (
            Path(cache_dir) / f"resnet50-{file_fingerprint(resnet50_weights)[:12]}-l{EXPORT_REVISION}.tflite"
        )
    fingerprint = efficientnet_lite.weights_fingerprint()
    revisions = f"r{efficientnet_lite.CONVERSION_REVISION}-l{EXPORT_REVISION}"
    return Path(cache_dir) / f"{efficientnet_lite.NAME}-{fingerprint[:12]}-{revisions}.tflite"


def convert_model(name, *, cache_dir, resnet50_weights=None) -> Path:
    """Convert the Keras model called ``name`` to the LiteRT file, unless it exists; returns
    its path. Imports TensorFlow when it converts (seconds): workers and commands only.

    The new file is checked against Keras on generated images before it replaces anything;
    raises :class:`ConversionFailed` when its features differ by more than ``MAX_DIFFERENCE``.
    """
    destination = converted_model_path(name, cache_dir=cache_dir, resnet50_weights=resnet50_weights)
    if destination.exists():
        return destination
    logger.info("converting the %s model to %s", name, destination)
    keras_embedder = build_keras_embedder(name, cache_dir=cache_dir, resnet50_weights=resnet50_weights)
    model = _serving_model(keras_embedder)
    destination.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary file in the same folder, swapped in only once checked: two workers
    # converting at once, or one killed half-way, never leave a broken file under the name.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.stem}-", suffix=".tflite", dir=destination.parent)
    os.close(fd)
    try:
        Path(tmp_name).write_bytes(_to_litert(model))
        _check(LiteRTEmbedder(name, keras_embedder.dim, tmp_name), keras_embedder)
        os.chmod(tmp_name, 0o644)  # web processes may run as another user than the worker
        os.replace(tmp_name, destination)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return destination


def _serving_model(keras_embedder):
    """The Keras model as it is converted: uint8 pixels in, input scaling inside,
    ``{"features", "logits"}`` out (one pass through the shared backbone)."""
    from .backend import load_tensorflow

    _, keras = load_tensorflow()
    features = keras_embedder.features_model
    outputs = {"features": features.output}
    if keras_embedder.classifier_model is not None:
        outputs["logits"] = keras_embedder.classifier_model.output
    backbone = keras.Model(features.input, outputs)
    pixels = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), dtype="uint8", name=SIGNATURE_INPUT)
    scaled = keras_embedder.preprocess(keras.ops.cast(pixels, "float32"))
    return keras.Model(pixels, backbone(scaled), name=f"{keras_embedder.name}_serving")


def _to_litert(model) -> bytes:
    from .backend import load_tensorflow

    tf, _ = load_tensorflow()
    # From the Keras model itself: converting a tf.function of it loses the weights (NaN
    # features), which the check after conversion would refuse. Keras prints the exported
    # signature: to stderr, so the output of a command that converts stays its own.
    with contextlib.redirect_stdout(sys.stderr):
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _check(converted, keras_embedder):
    images = check_images()
    difference = float(np.abs(converted.embed_images(images) - keras_embedder.embed_images(images)).max())
    if not difference <= MAX_DIFFERENCE:  # NaN fails too
        raise ConversionFailed(
            f"the converted {converted.name} model differs from Keras by {difference:.2e} (> {MAX_DIFFERENCE})"
        )


def check_images(count=4, seed=0):
    """Generated 224x224 photos (noise, gradients, flat colours) to compare models on."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, IMAGE_SIZE).astype(np.uint8)
    rows, columns = np.meshgrid(ramp, ramp, indexing="ij")
    images = [
        rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8),
        np.stack([rows, columns, 255 - rows], axis=-1),
        np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 255, dtype=np.uint8),
    ]
    while len(images) < count:
        images.append(np.full((IMAGE_SIZE, IMAGE_SIZE, 3), rng.integers(0, 256, 3), dtype=np.uint8))
    return np.stack(images[:count])


class LiteRTEmbedder(Embedder):
    """A converted model file run by the LiteRT interpreter (no TensorFlow)."""

    def __init__(self, name, dim, path, threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        interpreter = Interpreter(model_path=str(path), num_threads=threads or usable_cores())
        outputs = interpreter.get_signature_list()["serving_default"]["outputs"]
        super().__init__(name, dim, efficientnet_lite.NUM_CLASSES if "logits" in outputs else None)
        self._interpreter = interpreter
        # The runner resizes the input to each batch's size (cheap, no new delegate).
        self._runner = interpreter.get_signature_runner()
        # An interpreter runs one batch at a time: threads of a web worker take turns.
        self._lock = threading.Lock()

    def _outputs(self, batch):
        with self._lock:
            return self._runner(**{SIGNATURE_INPUT: batch})

    def _features(self, batch):
        return self._outputs(batch)["features"]

    def _logits(self, batch):
        return self._outputs(batch)["logits"]


_loaded = {}
_loading = threading.Lock()


def load_embedder(name, *, cache_dir, resnet50_weights=None, convert=True, threads=None) -> Embedder:
    """The embedder called ``name``, loaded once per process: the converted model, run by
    LiteRT without TensorFlow.

    When the converted file is missing (or unreadable) it is converted first if
    ``convert`` (importing TensorFlow: workers and commands); otherwise
    :class:`ModelNotConverted` is raised and a later call looks again. Raises
    :class:`EmbedderUnavailable` for an unknown name or a missing weights file.
    """
    check_name(name)
    key = (name, str(cache_dir), str(resnet50_weights or ""), threads)
    with _loading:
        if key not in _loaded:
            _loaded[key] = _load(name, cache_dir, resnet50_weights, convert, threads)
        return _loaded[key]


def _load(name, cache_dir, resnet50_weights, convert, threads):
    path = converted_model_path(name, cache_dir=cache_dir, resnet50_weights=resnet50_weights)
    dim = 2048 if name == "resnet50" else efficientnet_lite.FEATURE_DIM
    if path.exists():
        try:
            return LiteRTEmbedder(name, dim, path, threads)
        except (ValueError, RuntimeError) as exc:
            if not convert:
                raise ModelNotConverted(f"the converted model {path} is unreadable ({exc})") from exc
            logger.warning("converted model %s is unreadable (%s); converting again", path, exc)
            path.unlink(missing_ok=True)
    elif not convert:
        raise ModelNotConverted(f"the {name} model is not converted yet (no {path})")
    return LiteRTEmbedder(
        name, dim, convert_model(name, cache_dir=cache_dir, resnet50_weights=resnet50_weights), threads
    )
