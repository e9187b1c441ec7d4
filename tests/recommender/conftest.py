import numpy as np
import pytest
from django.utils import timezone

from recommender.embedding import VECTOR_RECIPE
from recommender.models import Embedding
from recommender.vectors import current_model_name
from tests.factories import ProductFactory


def store_vectors(product, cnn, colour=None, checksum="x"):
    """Store vectors for a product as the embedding task would."""
    colour = np.ones(8, dtype=np.float32) if colour is None else colour
    embedding, _ = Embedding.objects.update_or_create(
        product=product,
        model_name=current_model_name(),
        defaults={
            "checksum": checksum,
            "recipe": VECTOR_RECIPE,
            "cnn": np.asarray(cnn, dtype=np.float32).tobytes(),
            "colour": np.asarray(colour, dtype=np.float32).tobytes(),
            "updated_at": timezone.now(),
        },
    )
    return embedding


@pytest.fixture
def clustered_catalogue(db):
    """30 products in three tight clusters of vectors (10 each), all with the same colour."""
    rng = np.random.default_rng(7)
    centres = np.eye(3, 16, dtype=np.float32) * 10
    products = []
    for cluster, centre in enumerate(centres):
        for _ in range(10):
            product = ProductFactory(article_type=f"type{cluster}")
            store_vectors(product, centre + rng.normal(0, 0.5, 16))
            products.append(product)
    return products
