"""Search by photo: a shopper's upload (the only search that runs the CNN) or the photo
of a catalogue product (its stored vectors, no model run).

An upload becomes a :class:`PhotoQuery`: the backbone features of the photo (or of the
part the shopper cropped), never the photo itself. The query can be kept in the
shopper's session, so "Looks like" chips refine the results without a second upload.
"""

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from catalog.filters import FACET_LABELS
from catalog.models import Product

from . import active_model
from .active_model import prepare_photo
from .embedding import colour_descriptor, parse_crop
from .neighbours import product_vector, products_near, serving_space

# The crop box as request parameters (fractions of the photo), on the page and the API.
CROP_FIELDS = ("crop_x", "crop_y", "crop_width", "crop_height")
# What the trained head may say it sees, as the result filter each refines by.
LOOKS_LIKE = {"article_type": "articleType", "base_colour": "baseColour"}
# Predictions less likely than this are not shown.
MIN_LOOKS_LIKE_PROBABILITY = 0.3
# Said while the model is not ready (a new deployment whose worker is still converting it:
# read_photo raises recommender.embedding.EmbedderUnavailable), with Retry-After.
PHOTO_SEARCH_STARTING = "Photo search is starting up. Please try again in a minute."
RETRY_AFTER_SECONDS = 60


@dataclass
class PhotoQuery:
    """The backbone features of a shopper's photo."""

    cnn: np.ndarray
    colour: np.ndarray

    def as_text(self) -> str:
        """A compact text form (for the shopper's session)."""
        data = np.concatenate([self.cnn, self.colour]).astype(np.float32).tobytes()
        return f"{len(self.cnn)}:" + base64.b64encode(data).decode()

    @classmethod
    def from_text(cls, text: str) -> "PhotoQuery":
        length, data = text.split(":", 1)
        values = np.frombuffer(base64.b64decode(data), dtype=np.float32)
        return cls(cnn=values[: int(length)], colour=values[int(length) :])


@dataclass
class PhotoResults:
    products: list
    # [{"param", "label", "value", "probability"}]: what the model thinks it sees.
    looks_like: list = field(default_factory=list)


def crop_from(data: Mapping) -> tuple[float, float, float, float] | None:
    """The crop box in request data (``CROP_FIELDS``), checked; None when none was sent.

    Raises ValueError with a message for the shopper or API client for a bad box.
    """
    box = [data.get(name) for name in CROP_FIELDS]
    if all(value in (None, "") for value in box):
        return None
    return parse_crop(*box)


def read_photo(data: bytes, crop=None) -> PhotoQuery:
    """The features of an uploaded photo (or of its ``crop`` box).

    Raises recommender.embedding.InvalidImage with a shopper-readable message for files
    that are not images, or are too large.
    """
    array = prepare_photo(data, crop=crop)
    return PhotoQuery(cnn=active_model.get_embedder().embed_one(array), colour=colour_descriptor(array))


def search_with(query: PhotoQuery, k: int | None = None, filters: Mapping | None = None) -> PhotoResults:
    """The k products that look most like the photo, and what the model sees in it."""
    k = k or settings.SIMILAR_PRODUCTS_COUNT
    space, index = serving_space()
    vector = space.vectors(query.cnn, query.colour)[0]
    looks_like = []
    if space.head is not None:
        for task, param in LOOKS_LIKE.items():
            value, probability = space.head.predict(vector, task, top=1)[0]
            if probability >= MIN_LOOKS_LIKE_PROBABILITY:
                looks_like.append(
                    {"param": param, "label": FACET_LABELS[param], "value": value, "probability": probability}
                )
    return PhotoResults(products_near(space, index, vector, k, filters=filters), looks_like)


def search_by_photo(
    data: bytes, k: int | None = None, filters: Mapping | None = None, crop=None
) -> list[Product]:
    """The k catalogue products that look most like an uploaded photo (bytes)."""
    return search_with(read_photo(data, crop), k, filters).products


def search_by_product_photo(
    product_id: int, k: int | None = None, filters: Mapping | None = None
) -> list[Product]:
    """Search by the photo of a catalogue product (no model run: its vectors are stored)."""
    k = k or settings.SIMILAR_PRODUCTS_COUNT
    space, index = serving_space()
    vector = product_vector(space, product_id)
    if vector is None:
        return []
    return products_near(space, index, vector, k, exclude={product_id}, filters=filters)
