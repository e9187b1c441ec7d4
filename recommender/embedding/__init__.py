"""Image embedding for visual search: preprocessing, the CNN, colour signatures.

Importing this package is cheap; TensorFlow loads only when a model is first used.
"""
from .colour import COLOUR_DIM, colour_descriptor
from .embedder import Embedder, get_embedder
from .preprocessing import IMAGE_SIZE, InvalidImage, prepare_image
from .vectors import combine, l2_normalise

__all__ = [
    "COLOUR_DIM",
    "IMAGE_SIZE",
    "Embedder",
    "InvalidImage",
    "colour_descriptor",
    "combine",
    "get_embedder",
    "l2_normalise",
    "prepare_image",
]
