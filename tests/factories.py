"""factory-boy factories for every domain object."""
import io
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image

from catalog.models import Product
from shop.models import Cart, CartItem, Order, OrderItem


# Shipping details as the checkout form and the orders API take them.
SHIPPING = {
    "full_name": "Ada Shopper",
    "email": "ada@example.com",
    "address": "1 Main Street",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "Netherlands",
}


def image_bytes(colour=(200, 30, 30), size=(60, 80), fmt="JPEG"):
    """A small real image, encoded."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt)
    return buffer.getvalue()


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
