"""Sign up, log in and log out; the visitor's cart follows the shopper into the account."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from shop.models import Cart
from tests.factories import CartFactory, CartItemFactory, ProductFactory
from tests.shop_pages import messages_of, put_in_cart

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


def signup_data(**changes):
    return {
        "username": "newshopper",
        "email": "new@example.com",
        "password1": "a-Long-and-unusual-passw0rd",
        "password2": "a-Long-and-unusual-passw0rd",
        **changes,
    }


def cart_of(user):
    cart = Cart.objects.get(user=user, status=Cart.Status.OPEN)
    return {item.product_id: item.quantity for item in cart.items.all()}


def test_signup_creates_the_account_and_signs_in(client):
    response = client.post(reverse("signup"), signup_data())

    user = get_user_model().objects.get(username="newshopper")
    assert user.email == "new@example.com"
    assert user.check_password("a-Long-and-unusual-passw0rd")
    assert response.url == reverse("catalog:product_list")
    assert messages_of(response) == [("success", "Welcome, newshopper! Your account is ready.")]
    assert int(client.session["_auth_user_id"]) == user.pk


def test_signup_brings_the_visitors_cart_along(client, product):
    put_in_cart(client, product, 2)

    response = client.post(reverse("signup") + "?next=/cart/checkout/", signup_data(next="/cart/checkout/"))

    assert response.url == "/cart/checkout/"
    assert cart_of(get_user_model().objects.get(username="newshopper")) == {product.pk: 2}


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"password2": "something else"}, "password2"),
        ({"email": ""}, "email"),
        ({"email": "not-mail"}, "email"),
    ],
)
def test_signup_with_bad_details_is_asked_again(client, changes, field):
    response = client.post(reverse("signup"), signup_data(**changes))

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not get_user_model().objects.filter(username="newshopper").exists()


def test_signup_refuses_a_foreign_next(client):
    response = client.post(reverse("signup"), signup_data(next="https://evil.example.com/"))

    assert response.url == reverse("catalog:product_list")


def test_login_page_and_login(client, user):
    assert client.get(reverse("login")).status_code == 200

    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})

    assert response.url == reverse("catalog:product_list")
    page = client.get("/").content.decode()
    assert user.username in page and reverse("shop:order_history") in page


def test_wrong_password_is_refused(client, user):
    response = client.post(reverse("login"), {"username": user.username, "password": "nope"})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_login_merges_the_visitors_cart_into_the_account_cart(client, user):
    both = ProductFactory(stock=4)
    only_visitor = ProductFactory()
    only_account = ProductFactory()
    account_cart = CartFactory(user=user)
    CartItemFactory(cart=account_cart, product=both, quantity=3)
    CartItemFactory(cart=account_cart, product=only_account, quantity=1)
    put_in_cart(client, both, 2)
    put_in_cart(client, only_visitor, 1)
    visitor_cart = Cart.objects.get(user=None)

    client.post(reverse("login"), {"username": user.username, "password": PASSWORD})

    # 3 + 2 of `both` exceeds its stock of 4: the merged line is capped.
    assert cart_of(user) == {both.pk: 4, only_visitor.pk: 1, only_account.pk: 1}
    visitor_cart.refresh_from_db()
    assert visitor_cart.status == Cart.Status.MERGED
    assert "<span data-cart-count>6</span>" in client.get("/").content.decode()


def test_login_without_a_visitor_cart_keeps_the_account_cart(client, user, product):
    CartItemFactory(cart=CartFactory(user=user), product=product, quantity=2)

    client.post(reverse("login"), {"username": user.username, "password": PASSWORD})

    assert cart_of(user) == {product.pk: 2}


def test_logout_is_a_post(user_client):
    assert user_client.get(reverse("logout")).status_code == 405

    response = user_client.post(reverse("logout"))

    assert response.url == reverse("catalog:product_list")
    assert "_auth_user_id" not in user_client.session
    page = user_client.get("/").content.decode()
    assert reverse("login") in page and reverse("signup") in page


def test_header_logout_form_has_a_csrf_token(user_client):
    page = user_client.get("/").content.decode()

    logout_form = page[page.index(f'action="{reverse("logout")}"') :]
    assert 'name="csrfmiddlewaretoken"' in logout_form[: logout_form.index("</form>")]


def test_signed_in_shoppers_are_sent_away_from_login_and_signup(user_client):
    assert user_client.get(reverse("login")).status_code == 302
    assert user_client.get(reverse("signup")).status_code == 302
