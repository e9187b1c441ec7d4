"""Driving the cart and checkout pages like a shopper does."""

from django.contrib.messages import get_messages
from django.urls import reverse

from tests.factories import SHIPPING


def add_to_cart(client, product, quantity=1, next=None, **request_options):
    """POST the add-to-cart form of ``product`` (``request_options`` go to the test client)."""
    data = {"product_id": product.pk, "quantity": quantity}
    if next is not None:
        data["next"] = next
    return client.post(reverse("shop:add"), data, **request_options)


def put_in_cart(client, product, quantity=1):
    """Add to the cart and load the page the shopper lands on (which shows the message)."""
    response = add_to_cart(client, product, quantity, follow=True)
    assert response.status_code == 200
    return response


def checkout_form(client):
    """The checkout form's data as the page renders it (hidden cart id included)."""
    response = client.get(reverse("shop:checkout"))
    assert response.status_code == 200, "the checkout page should be open for a cart with lines"
    form = response.context["form"]
    return {**SHIPPING, "cart": form.initial.get("cart") or ""}


def messages_of(response):
    """(level tag, text) of the messages stored by the response."""
    return [(message.level_tag, message.message) for message in get_messages(response.wsgi_request)]
