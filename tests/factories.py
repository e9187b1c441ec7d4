"""factory-boy factories for every domain object."""

from decimal import Decimal

import factory
import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from catalog.models import Product
from recommender.embedding import VECTOR_RECIPE
from recommender.models import Embedding
from recommender.vector_store import current_model_name
from shop.models import Cart, CartItem, Order, OrderItem
from tests.images import image_bytes

# Shipping details as the checkout form and the orders API take them.
SHIPPING = {
    "full_name": "Ada Shopper",
    "email": "ada@example.com",
    "address": "1 Main Street",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "Netherlands",
}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"shopper{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    id = factory.Sequence(lambda n: 100000 + n)
    gender = "Men"
    master_category = "Apparel"
    sub_category = "Topwear"
    article_type = "Tshirts"
    base_colour = "Blue"
    season = "Summer"
    year = 2012
    usage = "Casual"
    name = factory.LazyAttribute(lambda p: f"Test {p.base_colour} {p.article_type} {p.id}")
    price = Decimal("19.99")
    stock = 10
    is_active = True

    class Params:
        with_image = factory.Trait(
            image=factory.LazyAttribute(lambda p: ContentFile(image_bytes(), name=f"{p.id}.jpg"))
        )


class CartFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cart

    user = factory.SubFactory(UserFactory)


class CartItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CartItem

    cart = factory.SubFactory(CartFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 1


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    number = factory.Sequence(lambda n: f"T{n:08d}")
    user = factory.SubFactory(UserFactory)
    full_name = "Ada Shopper"
    email = "ada@example.com"
    address = "1 Main Street"
    city = "Springfield"
    postal_code = "12345"
    country = "Netherlands"
    total = Decimal("19.99")


class OrderItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    product = factory.SubFactory(ProductFactory)
    product_name = factory.LazyAttribute(lambda i: i.product.name)
    unit_price = Decimal("19.99")
    quantity = 1


class EmbeddingFactory(factory.django.DjangoModelFactory):
    """Vectors stored for a product as the embedding task would, for the current model.

    ``cnn`` and ``colour`` take any sequence of numbers and are stored as float32 bytes.
    A product that already has vectors for the model gets them replaced (update or create),
    with a new ``updated_at``.
    """

    class Meta:
        model = Embedding

    product = factory.SubFactory(ProductFactory)
    model_name = factory.LazyFunction(current_model_name)
    checksum = "x"
    recipe = VECTOR_RECIPE
    cnn = factory.LazyFunction(lambda: np.ones(16, dtype=np.float32))
    colour = factory.LazyFunction(lambda: np.ones(8, dtype=np.float32))
    updated_at = factory.LazyFunction(timezone.now)

    @classmethod
    def _adjust_kwargs(cls, **kwargs):
        for field in ("cnn", "colour"):
            if not isinstance(kwargs[field], bytes):
                kwargs[field] = np.asarray(kwargs[field], dtype=np.float32).tobytes()
        return kwargs

    @classmethod
    def _create(cls, model_class, *args, product, model_name, **defaults):
        embedding, _ = cls._get_manager(model_class).update_or_create(
            product=product, model_name=model_name, defaults=defaults
        )
        return embedding
