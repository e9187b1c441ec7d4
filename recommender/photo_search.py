"""Search by photo: a shopper's upload (the only search that runs the CNN) or the photo
of a catalogue product (its stored vectors, no model run)."""

from collections.abc import Mapping

from django.conf import settings

from catalog.models import Product

from . import active_model
from .active_model import prepare_photo
from .embedding import colour_descriptor
from .neighbours import product_vector, products_near, serving_space


def search_by_photo(data: bytes, k: int | None = None, filters: Mapping | None = None) -> list[Product]:
    """The k catalogue products that look most like an uploaded photo (bytes).

    Raises recommender.embedding.InvalidImage with a shopper-readable message for files
    that are not images, or are too large.
    """
    k = k or settings.SIMILAR_PRODUCTS_COUNT
    array = prepare_photo(data)
    cnn = active_model.get_embedder().embed_one(array)
    space, index = serving_space()
    vector = space.vectors(cnn, colour_descriptor(array))[0]
    return products_near(space, index, vector, k, filters=filters)


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
