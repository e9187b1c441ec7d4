"""Image embedding for visual search: preprocessing, the CNN, colour signatures.

Importing this package is cheap. The CNN is served from a converted LiteRT file without
TensorFlow; TensorFlow loads only to convert the Keras model (or to train).
"""

from .colour import COLOUR_DIM, COLOUR_REVISION, colour_descriptor
from .embedder import EMBEDDER_NAMES, PREPROCESSING_REVISION, Embedder, EmbedderUnavailable
from .litert_model import ModelNotConverted, convert_model, converted_model_path, load_embedder
from .preprocessing import DEFAULT_MAX_PIXELS, IMAGE_SIZE, InvalidImage, parse_crop, prepare_image
from .vector_math import combine, l2_normalise, usable_cores

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
    "ModelNotConverted",
    "colour_descriptor",
    "combine",
    "convert_model",
    "converted_model_path",
    "l2_normalise",
    "usable_cores",
    "load_embedder",
    "parse_crop",
    "prepare_image",
]
