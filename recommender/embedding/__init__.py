"""Image embedding for visual search: preprocessing, the CNN, colour signatures.

Importing this package is cheap; TensorFlow loads only when a model is first used.
"""
from .colour import COLOUR_DIM, COLOUR_REVISION, colour_descriptor
from .embedder import PREPROCESSING_REVISION, Embedder, get_embedder
from .preprocessing import IMAGE_SIZE, InvalidImage, prepare_image
from .vectors import combine, l2_normalise

# Identifies how stored vectors were made, beside the model name: vectors of another
# recipe are recomputed. Known without loading TensorFlow.
VECTOR_RECIPE = f"p{PREPROCESSING_REVISION}-c{COLOUR_REVISION}"

__all__ = [
    "VECTOR_RECIPE",
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
