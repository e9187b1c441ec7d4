"""CSRF protection on the session-authenticated API, for visitors and shoppers alike."""

import pytest
from rest_framework.test import APIClient

from catalog.models import Product
from shop.models import CartItem, Order
from tests.factories import SHIPPING

pytestmark = pytest.mark.django_db


def csrf_token(client):
    """The token a browser page would read from the cookie set by GET /api/cart/."""
    return client.get("/api/cart/").cookies["csrftoken"].value


def test_visitor_cart_change_without_token_is_refused(csrf_client, product):
    response = csrf_client.post("/api/cart/items/", {"product_id": product.id}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF Failed")
    assert not CartItem.objects.exists()


def test_visitor_cart_change_with_token_is_accepted(csrf_client, product):
    token = csrf_token(csrf_client)

    response = csrf_client.post(
        "/api/cart/items/", {"product_id": product.id}, format="json", HTTP_X_CSRFTOKEN=token
    )

    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_visitor_checkout_without_token_is_refused(csrf_client, product):
    token = csrf_token(csrf_client)
    csrf_client.post("/api/cart/items/", {"product_id": product.id}, format="json", HTTP_X_CSRFTOKEN=token)

    response = csrf_client.post("/api/orders/", SHIPPING, format="json")

    assert response.status_code == 403
    assert not Order.objects.exists()


def test_shopper_cart_change_without_token_is_refused(user, product):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.delete(f"/api/cart/items/{product.id}/")

    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF Failed")


def test_staff_product_change_without_token_is_refused(staff_user, product):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)

    response = client.patch(f"/api/products/{product.id}/", {"price": "1.00"}, format="json")

    assert response.status_code == 403
    assert Product.objects.get(pk=product.pk).price == product.price


def test_reading_needs_no_token(csrf_client, product):
    assert csrf_client.get("/api/products/").status_code == 200
    assert csrf_client.get(f"/api/products/{product.id}/").status_code == 200
