"""Cart API: the session cart of visitors and the account cart of shoppers."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from shop.models import CartItem
from tests.factories import CartFactory, CartItemFactory, ProductFactory

pytestmark = pytest.mark.django_db


def add(client, product_id, quantity=1):
    return client.post("/api/cart/items/", {"product_id": product_id, "quantity": quantity}, format="json")


class TestCartRoundTrip:
    def test_empty_cart_for_a_new_visitor(self, api_client):
        response = api_client.get("/api/cart/")

        assert response.status_code == 200
        assert response.json() == {"items": [], "count": 0, "total": "0.00"}
        assert response.cookies["csrftoken"].value

    def test_add_change_and_remove(self, api_client):
        shirt = ProductFactory(name="Blue Shirt", price=Decimal("19.99"), with_image=True)
        cap = ProductFactory(name="Red Cap", price=Decimal("5.00"))

        added = add(api_client, shirt.id, 2)
        assert added.status_code == 200
        assert added.json()["message"] == "Added Blue Shirt to your cart."
        assert added.json()["level"] == "success"
        add(api_client, cap.id)

        cart = api_client.get("/api/cart/").json()
        assert cart["count"] == 3
        assert cart["total"] == "44.98"
        assert cart["items"][0] == {
            "product_id": shirt.id,
            "name": "Blue Shirt",
            "price": "19.99",
            "quantity": 2,
            "line_total": "39.98",
            "image": f"http://testserver/media/{shirt.image.name}",
        }
        assert cart["items"][1]["image"] is None

        changed = api_client.patch(f"/api/cart/items/{shirt.id}/", {"quantity": 5}, format="json")
        assert changed.status_code == 200
        assert changed.json()["message"] == "Updated Blue Shirt to 5."
        assert changed.json()["count"] == 6
        assert changed.json()["total"] == "104.95"

        removed = api_client.delete(f"/api/cart/items/{shirt.id}/")
        assert removed.status_code == 200
        assert removed.json()["message"] == "Removed Blue Shirt from your cart."
        assert [item["product_id"] for item in removed.json()["items"]] == [cap.id]

    def test_adding_again_adds_to_the_line(self, api_client, product):
        add(api_client, product.id, 2)

        response = add(api_client, product.id, 3)

        assert response.json()["items"][0]["quantity"] == 5

    def test_quantity_zero_removes_the_line(self, api_client, product):
        add(api_client, product.id)

        response = api_client.patch(f"/api/cart/items/{product.id}/", {"quantity": 0}, format="json")

        assert response.status_code == 200
        assert response.json()["items"] == []

    def test_quantity_above_stock_is_limited_with_a_warning(self, api_client):
        product = ProductFactory(name="Rare Scarf", stock=3)

        response = add(api_client, product.id, 10)

        assert response.status_code == 200
        assert response.json()["level"] == "warning"
        assert response.json()["message"] == "Only 3 of Rare Scarf can be ordered; quantity set to 3."
        assert response.json()["items"][0]["quantity"] == 3

    def test_shoppers_cart_is_their_account_cart(self, user_api, user, product):
        add(user_api, product.id, 2)

        assert CartItem.objects.get(cart__user=user).quantity == 2
        assert user_api.get("/api/cart/").json()["count"] == 2

    def test_visitors_do_not_see_each_others_carts(self, api_client, product):
        add(api_client, product.id)

        stranger = APIClient()

        assert stranger.get("/api/cart/").json()["count"] == 0

    def test_shopper_does_not_see_another_shoppers_cart(self, other_user_api, product):
        CartItemFactory(cart=CartFactory(), product=product, quantity=4)

        assert other_user_api.get("/api/cart/").json()["count"] == 0


class TestCartErrors:
    def test_quantity_that_is_not_a_number(self, api_client, product):
        response = add(api_client, product.id, "lots")

        assert response.status_code == 400
        assert response.json()["detail"] == "quantity: A valid integer is required."
        assert not CartItem.objects.exists()

    def test_quantity_below_one(self, api_client, product):
        response = add(api_client, product.id, 0)

        assert response.status_code == 400
        assert response.json()["detail"] == "quantity: Ensure this value is greater than or equal to 1."

    def test_negative_quantity_change(self, api_client, product):
        add(api_client, product.id, 2)

        response = api_client.patch(f"/api/cart/items/{product.id}/", {"quantity": -1}, format="json")

        assert response.status_code == 400
        assert "quantity" in response.json()["detail"]
        assert CartItem.objects.get().quantity == 2

    def test_unknown_product(self, api_client):
        response = add(api_client, 424242)

        assert response.status_code == 400
        assert response.json() == {"detail": "This product does not exist."}

    def test_product_no_longer_sold(self, api_client):
        product = ProductFactory(name="Old Boots", is_active=False)

        response = add(api_client, product.id)

        assert response.status_code == 400
        assert response.json() == {"detail": "Old Boots is no longer sold."}

    def test_out_of_stock(self, api_client):
        product = ProductFactory(name="Sold Out Tee", stock=0)

        response = add(api_client, product.id)

        assert response.status_code == 400
        assert response.json() == {"detail": "Sorry, Sold Out Tee is out of stock."}
        assert not CartItem.objects.exists()

    def test_changing_a_product_not_in_the_cart(self, api_client, product):
        response = api_client.patch(f"/api/cart/items/{product.id}/", {"quantity": 2}, format="json")

        assert response.status_code == 400
        assert response.json() == {"detail": "This product is not in your cart."}

    def test_missing_product_id(self, api_client):
        response = api_client.post("/api/cart/items/", {"quantity": 1}, format="json")

        assert response.status_code == 400
        assert response.json()["detail"] == "product_id: This field is required."

    def test_malformed_json(self, api_client):
        response = api_client.post("/api/cart/items/", "{not json", content_type="application/json")

        assert response.status_code == 400
        assert "JSON parse error" in response.json()["detail"]
