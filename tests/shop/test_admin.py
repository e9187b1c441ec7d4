"""Staff follow orders up in the admin; order lines and carts are records, not edited there."""

import pytest
from django.urls import reverse

from shop.models import Order
from tests.factories import CartItemFactory, OrderFactory, OrderItemFactory

pytestmark = pytest.mark.django_db


def test_order_list_filters_by_status(staff_client):
    placed = OrderFactory(status=Order.Status.PLACED)
    shipped = OrderFactory(status=Order.Status.SHIPPED)

    page = staff_client.get(
        reverse("admin:shop_order_changelist"), {"status__exact": "shipped"}
    ).content.decode()

    assert shipped.number in page
    assert placed.number not in page


def test_order_page_shows_lines_read_only_and_changes_status(staff_client):
    item = OrderItemFactory(product_name="Canvas Tote", quantity=2)
    order = item.order
    url = reverse("admin:shop_order_change", args=[order.pk])

    page = staff_client.get(url).content.decode()
    assert "Canvas Tote" in page
    assert 'name="items-0-quantity"' not in page  # lines are shown, not editable

    response = staff_client.post(
        url,
        {
            "status": "shipped",
            "items-TOTAL_FORMS": "1",
            "items-INITIAL_FORMS": "1",
            "items-MIN_NUM_FORMS": "0",
            "items-MAX_NUM_FORMS": "1000",
            "items-0-id": str(item.pk),
            "items-0-order": str(order.pk),
        },
    )
    assert response.status_code == 302
    order.refresh_from_db()
    item.refresh_from_db()
    assert order.status == "shipped"
    assert item.quantity == 2


def test_orders_cannot_be_added_by_hand(staff_client):
    assert staff_client.get(reverse("admin:shop_order_add")).status_code == 403


def test_cart_pages_are_read_only(staff_client):
    item = CartItemFactory()

    listing = staff_client.get(reverse("admin:shop_cart_changelist"))
    detail = staff_client.get(reverse("admin:shop_cart_change", args=[item.cart.pk]))

    assert listing.status_code == 200 and item.cart.user.username in listing.content.decode()
    assert detail.status_code == 200
    assert 'name="status"' not in detail.content.decode()
    assert staff_client.get(reverse("admin:shop_cart_add")).status_code == 403


def test_shoppers_cannot_open_the_order_admin(user_client):
    response = user_client.get(reverse("admin:shop_order_changelist"))

    assert response.status_code == 302
    assert reverse("admin:login") in response.url


def test_cart_pages_never_show_a_visitors_session_key(staff_client):
    visitor_cart = CartItemFactory(cart__user=None, cart__session_key="s3cr3tsessionkey0123456789abcdef").cart

    listing = staff_client.get(reverse("admin:shop_cart_changelist")).content.decode()
    detail = staff_client.get(reverse("admin:shop_cart_change", args=[visitor_cart.pk])).content.decode()

    for page in (listing, detail):
        assert "s3cr3t" not in page
    assert "visitor" in listing
