"""Image embedding for visual search: preprocessing, the CNN, colour signatures.

Importing this package is cheap; TensorFlow loads only when a model is first used.
"""

from .colour import COLOUR_DIM, COLOUR_REVISION, colour_descriptor
from .embedder import EMBEDDER_NAMES, PREPROCESSING_REVISION, Embedder, EmbedderUnavailable, load_embedder
from .preprocessing import DEFAULT_MAX_PIXELS, IMAGE_SIZE, InvalidImage, parse_crop, prepare_image
from .vector_math import combine, l2_normalise

# Identifies how stored vectors were made, beside the model name: vectors of another
# recipe are recomputed. Known without loading TensorFlow.
VECTOR_RECIPE = f"p{PREPROCESSING_REVISION}-c{COLOUR_REVISION}"

__all__ = [
    "VECTOR_RECIPE",
    "COLOUR_DIM",
    "DEFAULT_MAX_PIXELS",
    "EMBEDDER_NAMES",
    "IMAGE_SIZE",
    "Embedder",
    "EmbedderUnavailable",
    "InvalidImage",
    "colour_descriptor",
    "combine",
    "l2_normalise",
    "load_embedder",
    "parse_crop",
    "prepare_image",
]
