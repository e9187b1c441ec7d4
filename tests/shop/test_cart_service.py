"""Cart service edge cases the pages rely on: stale carts and ids that are not numbers."""

import pytest

from shop.models import Cart, CartItem
from shop.services import CartError, add_to_cart, set_quantity
from tests.factories import CartFactory, CartItemFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", [Cart.Status.ORDERED, Cart.Status.MERGED])
def test_a_cart_that_is_no_longer_open_takes_no_changes(status):
    """A page read the cart just before another tab checked it out: the change is refused, not lost."""
    item = CartItemFactory(quantity=1)
    cart_as_read = item.cart
    Cart.objects.filter(pk=cart_as_read.pk).update(status=status)

    with pytest.raises(CartError, match="checked out or replaced"):
        add_to_cart(cart_as_read, ProductFactory().pk, 1)
    with pytest.raises(CartError, match="checked out or replaced"):
        set_quantity(cart_as_read, item.product_id, 3)

    assert list(CartItem.objects.values_list("quantity", flat=True)) == [1]


@pytest.mark.parametrize("product_id", ["abc", "1.5", [1]])
def test_set_quantity_with_something_that_is_not_an_id(product_id):
    cart = CartFactory()

    with pytest.raises(CartError, match="not in your cart"):
        set_quantity(cart, product_id, 1)
