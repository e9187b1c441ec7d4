"""The image model this shop runs, built from its settings.

recommender.embedding never reads Django settings; this module hands it the configured
model name, weights cache and image limits, so every caller embeds the same way.

The model runs from a LiteRT file converted from the Keras model and kept in
``MODEL_CACHE_DIR`` (recommender.embedding.litert_model). Converting imports TensorFlow, so
web processes should never do it: they call :func:`preload_embedder` when they start, and
from then on only read the file; the worker (or :func:`convert_model` in a deploy step)
makes it.
"""

import logging
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from . import embedding
from .embedding import EMBEDDER_NAMES, Embedder, prepare_image
from .embedding.pipeline import PREPARING_THREADS, embed_photo_batches
from .vector_store import current_model_name

logger = logging.getLogger(__name__)

# False once preload_embedder() has declared this a web process: no conversion, no TensorFlow.
_may_convert = True
# The model's threads in a web process (unless INFERENCE_THREADS says): each gunicorn worker
# runs one search at a time beside the others, about one per core, and 4 concurrent
# uploaders were answered faster with 1 thread each than with every core each
# (docs/benchmarks.md). Workers and commands embed one batch at a time on every core.
WEB_INFERENCE_THREADS = 1


def get_embedder() -> Embedder:
    """The embedder named by ``settings.EMBEDDING_MODEL``, loaded once per process.

    Reads the converted model without TensorFlow. When the converted file is missing it is
    converted first (importing TensorFlow, seconds), except in a process that called
    :func:`preload_embedder`: there it raises recommender.embedding.ModelNotConverted
    until the worker or :func:`convert_model` has made the file.
    """
    threads = settings.INFERENCE_THREADS or (None if _may_convert else WEB_INFERENCE_THREADS)
    return embedding.load_embedder(**_configured_model(), convert=_may_convert, threads=threads)


def convert_model() -> Path:
    """Convert the configured model to the file web processes load, unless it exists, and
    return its path. Imports TensorFlow when it converts: for the worker at start, deploy
    steps and commands, never for web processes."""
    return embedding.convert_model(**_configured_model())


def model_is_converted() -> bool:
    """Whether the file web processes load exists for the configured model."""
    return embedding.converted_model_path(**_configured_model()).exists()


def preload_embedder() -> Embedder | None:
    """Load the converted model now, for a web process at start, and never convert (never
    import TensorFlow) in this process from then on.

    Call it where only web servers pass: at the end of config/wsgi.py (runserver and
    gunicorn import it; with ``gunicorn --preload`` the model is loaded once before the
    workers fork and shared by them) or in gunicorn's ``post_worker_init``. Not in
    AppConfig.ready: workers and commands run that too, and they may convert. Returns
    None, with a warning, when the model is not converted yet: photo search then raises
    ModelNotConverted until the file exists, and loads it on the next search.
    """
    global _may_convert
    _may_convert = False
    try:
        return get_embedder()
    except embedding.ModelNotConverted as exc:
        logger.warning("photo search is unavailable until the model is converted: %s", exc)
        return None


def _configured_model() -> dict:
    """``load_embedder`` arguments for the configured model, checked."""
    name = current_model_name()
    if name not in EMBEDDER_NAMES:
        raise ImproperlyConfigured(
            f"EMBEDDING_MODEL is {name!r}; choose one of: {', '.join(EMBEDDER_NAMES)}."
        )
    weights = settings.RESNET50_WEIGHTS_PATH
    if name == "resnet50":
        if not weights:
            raise ImproperlyConfigured(
                "EMBEDDING_MODEL is 'resnet50' but RESNET50_WEIGHTS_PATH is not set. Point it at the "
                "Keras ResNet50 ImageNet weights without top "
                "(resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5), or use "
                "EMBEDDING_MODEL=efficientnet_lite0, which needs no download."
            )
        if not Path(weights).is_file():
            raise ImproperlyConfigured(f"RESNET50_WEIGHTS_PATH points at {weights}, which is not a file.")
    return {"name": name, "cache_dir": settings.MODEL_CACHE_DIR, "resnet50_weights": weights or None}


def prepare_photo(source, crop=None) -> np.ndarray:
    """The model input for a photo (bytes, path or file), within the shop's pixel limit;
    ``crop`` (recommender.embedding.parse_crop) keeps part of it.

    Raises recommender.embedding.InvalidImage with a message safe to show a shopper.
    """
    return prepare_image(source, max_pixels=settings.IMAGE_MAX_PIXELS, crop=crop)


def embed_photo_files(paths, embedder=None, batch_size=64, progress=None, threads=PREPARING_THREADS):
    """CNN and colour vectors of image files, as products' photos are embedded (files of
    the next batches are read while the model runs, see recommender.embedding.pipeline).

    Returns ``(cnn, colour, failed)``: arrays with one row per readable file, and the
    positions of files that could not be read. ``progress`` is called with the number
    of files done after each batch. ``threads`` read files beside the model (0: in
    turn with it).
    """
    embedder = embedder or get_embedder()
    batches = (
        range(start, min(start + batch_size, len(paths))) for start in range(0, len(paths), batch_size)
    )
    cnn_rows, colour_rows, failed = [], [], []
    done = 0
    for photos in embed_photo_batches(
        batches,
        lambda position: (prepare_photo(paths[position]), None),
        embedder,
        model_batch_size=batch_size,
        threads=threads,
    ):
        for photo in photos:
            if photo.embedded:
                cnn_rows.append(photo.cnn)
                colour_rows.append(photo.colour)
            else:
                failed.append(photo.item)
        done += len(photos)
        if progress:
            progress(done)
    if not cnn_rows:
        return np.empty((0, 0), np.float32), np.empty((0, 0), np.float32), failed
    return np.stack(cnn_rows), np.stack(colour_rows), failed
