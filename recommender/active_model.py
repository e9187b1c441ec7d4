"""The image model this shop runs, built from its settings.

recommender.embedding never reads Django settings; this module hands it the configured
model name, weights cache and image limits, so every caller embeds the same way.
"""

from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .embedding import EMBEDDER_NAMES, Embedder, InvalidImage, colour_descriptor, load_embedder, prepare_image
from .vector_store import current_model_name


def get_embedder() -> Embedder:
    """The embedder named by ``settings.EMBEDDING_MODEL``, loaded once per process.

    Imports TensorFlow on first use: never call it on a page that does not embed a photo.
    """
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
    return load_embedder(name, cache_dir=settings.MODEL_CACHE_DIR, resnet50_weights=weights or None)


def prepare_photo(source, crop=None) -> np.ndarray:
    """The model input for a photo (bytes, path or file), within the shop's pixel limit;
    ``crop`` (recommender.embedding.parse_crop) keeps part of it.

    Raises recommender.embedding.InvalidImage with a message safe to show a shopper.
    """
    return prepare_image(source, max_pixels=settings.IMAGE_MAX_PIXELS, crop=crop)


def embed_photo_files(paths, embedder=None, batch_size=64, progress=None):
    """CNN and colour vectors of image files, as products' photos are embedded.

    Returns ``(cnn, colour, failed)``: arrays with one row per readable file, and the
    positions of files that could not be read. ``progress`` is called with the number
    of files done after each batch.
    """
    embedder = embedder or get_embedder()
    cnn_rows, colour_rows, failed = [], [], []
    for start in range(0, len(paths), batch_size):
        arrays = []
        for position in range(start, min(start + batch_size, len(paths))):
            try:
                arrays.append(prepare_photo(paths[position]))
            except (InvalidImage, OSError):
                failed.append(position)
        if arrays:
            cnn_rows.append(embedder.embed_images(arrays, batch_size=batch_size))
            colour_rows.append(np.stack([colour_descriptor(array) for array in arrays]))
        if progress:
            progress(min(start + batch_size, len(paths)))
    if not cnn_rows:
        return np.empty((0, 0), np.float32), np.empty((0, 0), np.float32), failed
    return np.concatenate(cnn_rows), np.concatenate(colour_rows), failed
