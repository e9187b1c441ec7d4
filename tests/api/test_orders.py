"""Orders API: checkout from the cart, and each shopper seeing only their own orders."""

from decimal import Decimal

import pytest

from catalog.models import Product
from shop.models import Order
from tests.factories import OrderFactory, OrderItemFactory, ProductFactory

pytestmark = pytest.mark.django_db


def add(client, product_id, quantity=1):
    return client.post("/api/cart/items/", {"product_id": product_id, "quantity": quantity}, format="json")


def test_shopping_round_trip(user_api, user, shipping):
    jeans = ProductFactory(name="Blue Slim Jeans", gender="Women", price=Decimal("40.00"), stock=5)
    ProductFactory(name="Blue Slim Jeans", gender="Men")
    ProductFactory(name="Red Dress", gender="Women")

    found = user_api.get("/api/products/", {"gender": "Women", "q": "jeans"}).json()["results"]
    assert [item["id"] for item in found] == [jeans.id]
    detail = user_api.get(f"/api/products/{jeans.id}/").json()
    assert detail["price"] == "40.00"

    assert add(user_api, jeans.id, 1).status_code == 200
    assert user_api.patch(f"/api/cart/items/{jeans.id}/", {"quantity": 2}, format="json").status_code == 200

    placed = user_api.post("/api/orders/", shipping, format="json")

    assert placed.status_code == 201, placed.json()
    order = placed.json()
    assert order["status"] == "placed"
    assert order["total"] == "80.00"
    assert order["items"] == [
        {
            "product_id": jeans.id,
            "product_name": "Blue Slim Jeans",
            "unit_price": "40.00",
            "quantity": 2,
            "line_total": "80.00",
        }
    ]
    assert order["full_name"] == "Ada Shopper"
    assert order["created_at"]
    jeans.refresh_from_db()
    assert jeans.stock == 3
    assert Order.objects.get(number=order["number"]).user == user
    assert user_api.get("/api/cart/").json()["count"] == 0

    mine = user_api.get("/api/orders/").json()
    assert [o["number"] for o in mine["results"]] == [order["number"]]
    again = user_api.get(f"/api/orders/{order['number']}/")
    assert again.status_code == 200
    assert again.json() == order


def test_order_keeps_the_price_paid(user_api, shipping):
    product = ProductFactory(price=Decimal("10.00"))
    add(user_api, product.id)
    number = user_api.post("/api/orders/", shipping, format="json").json()["number"]

    Product.objects.filter(pk=product.pk).update(price=Decimal("99.00"), name="Renamed")

    item = user_api.get(f"/api/orders/{number}/").json()["items"][0]
    assert item["unit_price"] == "10.00"
    assert item["product_name"] != "Renamed"


def test_visitor_can_check_out_their_session_cart(api_client, shipping, product):
    add(api_client, product.id, 2)

    response = api_client.post("/api/orders/", shipping, format="json")

    assert response.status_code == 201
    assert Order.objects.get(number=response.json()["number"]).user is None
    product.refresh_from_db()
    assert product.stock == 8


class TestCheckoutErrors:
    def test_empty_cart(self, user_api, shipping):
        response = user_api.post("/api/orders/", shipping, format="json")

        assert response.status_code == 409
        assert response.json() == {"detail": "Your cart is empty."}
        assert not Order.objects.exists()

    def test_stock_ran_out_after_adding(self, user_api, shipping):
        product = ProductFactory(name="Last Hoodie", stock=2)
        add(user_api, product.id, 2)
        Product.objects.filter(pk=product.pk).update(stock=1)

        response = user_api.post("/api/orders/", shipping, format="json")

        assert response.status_code == 409
        assert response.json()["detail"] == "Sorry, not enough Last Hoodie in stock. Please update your cart."
        assert not Order.objects.exists()
        product.refresh_from_db()
        assert product.stock == 1
        assert user_api.get("/api/cart/").json()["count"] == 2

    def test_invalid_shipping_details(self, user_api, shipping, product):
        add(user_api, product.id)
        shipping["email"] = "not-an-email"
        del shipping["city"]

        response = user_api.post("/api/orders/", shipping, format="json")

        assert response.status_code == 400
        body = response.json()
        assert "email: Enter a valid email address." in body["detail"]
        assert "city: This field is required." in body["detail"]
        assert set(body["errors"]) == {"email", "city"}
        assert not Order.objects.exists()
        product.refresh_from_db()
        assert product.stock == 10


class TestOrderPrivacy:
    def test_shopper_cannot_see_another_shoppers_order(self, other_user_api, user):
        order = OrderItemFactory(order=OrderFactory(user=user)).order

        response = other_user_api.get(f"/api/orders/{order.number}/")

        assert response.status_code == 404
        assert response.json()["detail"]
        assert order.number not in response.content.decode()

    def test_list_holds_only_own_orders(self, user_api, user, other_user):
        own = OrderFactory(user=user)
        OrderFactory(user=other_user)
        OrderFactory(user=None)

        numbers = [o["number"] for o in user_api.get("/api/orders/").json()["results"]]

        assert numbers == [own.number]

    def test_visitor_cannot_list_orders(self, api_client):
        OrderFactory()

        response = api_client.get("/api/orders/")

        assert response.status_code == 403
        assert response.json() == {"detail": "Authentication credentials were not provided."}

    def test_visitor_cannot_open_an_order(self, api_client):
        order = OrderFactory()

        response = api_client.get(f"/api/orders/{order.number}/")

        assert response.status_code == 403
        assert "Ada Shopper" not in response.content.decode()

    def test_order_list_query_count_does_not_grow(self, user_api, user, django_assert_max_num_queries):
        for _ in range(10):
            OrderItemFactory.create_batch(2, order=OrderFactory(user=user))

        # Session and user, the page count and rows, the order lines in one prefetch.
        with django_assert_max_num_queries(5):
            response = user_api.get("/api/orders/")

        assert len(response.json()["results"]) == 10
