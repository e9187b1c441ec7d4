"""Real concurrent checkouts and logins against PostgreSQL: the last pieces are never sold
twice, and a cart merged at login loses, doubles or smuggles nothing into an order.

Each buyer is a separate test client in its own thread with its own database connection;
a barrier releases all checkout requests at the same moment. The merge tests pause one
request inside the cart service until the other one has finished or waits for a lock, so
each interleaving happens every time.
"""

import copy
import threading
import time
from collections import Counter

import psycopg
import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import Client
from django.urls import reverse

from catalog.models import Product
from shop import services
from shop.models import Cart, CartItem, Order, OrderItem
from tests.factories import SHIPPING, CartFactory, CartItemFactory, ProductFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CHECKOUT_URL = reverse("shop:checkout")
BUYERS = 8
STOCK = 3


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")


def post_at_once(requests):
    """POST every (client, data) pair to the checkout at the same moment.

    Returns the responses and the exceptions raised inside the views, in request order.
    """
    barrier = threading.Barrier(len(requests))
    responses = [None] * len(requests)
    errors = []

    def checkout(index, client, data):
        try:
            barrier.wait(timeout=30)
            responses[index] = client.post(CHECKOUT_URL, data)
        except Exception as exc:  # noqa: BLE001  (reported by the test, not lost in the thread)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=checkout, args=(i, *request)) for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a checkout hung"
    return responses, errors


def is_confirmation(response):
    return response.status_code == 302 and response.url.endswith("/confirmation/")


@pytest.mark.parametrize("wanted, expected_orders", [(1, 3), (2, 1)])
def test_concurrent_buyers_never_oversell(wanted, expected_orders):
    product = ProductFactory(stock=STOCK)
    requests, carts = [], []
    for _ in range(BUYERS):
        user = UserFactory()
        cart = CartFactory(user=user)
        CartItemFactory(cart=cart, product=product, quantity=wanted)
        client = Client()
        client.force_login(user)
        requests.append((client, {**SHIPPING, "cart": cart.pk}))
        carts.append(cart)

    responses, errors = post_at_once(requests)

    assert errors == []
    product.refresh_from_db()
    sold = OrderItem.objects.filter(product=product)
    assert product.stock >= 0
    assert Order.objects.count() == expected_orders
    assert sum(item.quantity for item in sold) == STOCK - product.stock == expected_orders * wanted
    assert sum(is_confirmation(response) for response in responses) == expected_orders
    # The others are sent back to their cart, which stays open and intact.
    refused = [response for response in responses if not is_confirmation(response)]
    assert all(response.url == reverse("shop:cart") for response in refused)
    statuses = sorted(Cart.objects.filter(pk__in=[c.pk for c in carts]).values_list("status", flat=True))
    assert statuses.count(Cart.Status.ORDERED) == expected_orders
    assert statuses.count(Cart.Status.OPEN) == BUYERS - expected_orders
    # Every placed order belongs to the buyer whose cart it came from.
    for order in Order.objects.all():
        assert Cart.objects.get(user=order.user, status=Cart.Status.ORDERED)


def test_the_same_checkout_submitted_four_times_at_once_places_one_order():
    product = ProductFactory(stock=10)
    user = UserFactory()
    cart = CartFactory(user=user)
    CartItemFactory(cart=cart, product=product, quantity=2)
    first = Client()
    first.force_login(user)
    tabs = [first]
    for _ in range(3):  # more requests of the same browser session
        tab = Client()
        tab.cookies = copy.deepcopy(first.cookies)  # same session, own cookie jar per thread
        tabs.append(tab)
    data = {**SHIPPING, "cart": cart.pk}

    responses, errors = post_at_once([(tab, data) for tab in tabs])

    assert errors == []
    assert Order.objects.count() == 1
    assert Product.objects.get(pk=product.pk).stock == 8
    confirmation = reverse("shop:order_confirmation", args=[Order.objects.get().number])
    # Depending on timing a repeat lands on the order itself or on the order history.
    urls = [response.url for response in responses]
    assert confirmation in urls
    assert set(urls) <= {confirmation, reverse("shop:order_history")}


# --- Cart merge at login against a checkout or another login of the same account ---

LOGIN_URL = reverse("login")
PASSWORD = "correct horse battery"  # tests.factories.UserFactory


class Interleaving:
    """Runs named requests in threads; ``pause_in(hook, name)`` stops thread ``name`` at
    its first call of ``shop.services.<hook>`` until every other thread has finished, is
    paused too, or is waiting for a database lock (seen in pg_stat_activity)."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        # Each thread's backend, also when Django reconnects during a request.
        connection_created.connect(self._remember_backend, weak=False)
        self.names, self.pids, self.paused, self.done = set(), {}, set(), set()
        self.reached = {}  # thread name -> threading.Event, set when it pauses
        self.responses, self.errors = {}, []
        self.threads = []

    def pause_in(self, hook, name):
        original = getattr(services, hook)
        self.reached[name] = threading.Event()

        def paused(*args, **kwargs):
            me = threading.current_thread().name
            if me == name and me not in self.paused:
                self.paused.add(me)
                self.reached[me].set()
                self._wait_for_the_others(me)
            return original(*args, **kwargs)

        self.monkeypatch.setattr(services, hook, paused)

    def _remember_backend(self, sender, connection, **kwargs):
        self.pids[threading.current_thread().name] = connection.connection.info.backend_pid

    def _wait_for_the_others(self, me):
        params = connection.get_connection_params()
        with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}) as monitor:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                others = self.names - {me} - self.done - self.paused
                activity = dict(
                    monitor.execute("SELECT pid, wait_event_type FROM pg_stat_activity").fetchall()
                )
                if all(activity.get(self.pids.get(other)) == "Lock" for other in others):
                    return
                time.sleep(0.02)
        states = {other: activity.get(self.pids.get(other), "no backend") for other in others}
        raise AssertionError(f"{me}: the other requests neither finished nor waited for a lock: {states}")

    def start(self, name, request, after=None):
        """Run ``request()`` in thread ``name``, once thread ``after`` has paused."""

        def run():
            try:
                if after:
                    assert self.reached[after].wait(30), f"{after} never reached its pause"
                connection.ensure_connection()
                self.responses[name] = request()
            except Exception as exc:  # noqa: BLE001  (reported by the test, not lost in the thread)
                self.errors.append((name, exc))
            finally:
                self.done.add(name)
                connection.close()

        self.names.add(name)
        thread = threading.Thread(target=run, name=name)
        self.threads.append(thread)
        thread.start()

    def join(self):
        for thread in self.threads:
            thread.join(timeout=60)
        connection_created.disconnect(self._remember_backend)
        assert not any(thread.is_alive() for thread in self.threads), "a request hung"
        assert self.errors == []
        assert all(response.status_code < 500 for response in self.responses.values())


def visitor_with_cart(lines):
    """A visitor's browser whose session cart holds ``{product: quantity}``, added through the page."""
    browser = Client()
    for product, quantity in lines.items():
        response = browser.post(reverse("shop:add"), {"product_id": product.pk, "quantity": quantity})
        assert response.status_code == 302
    return browser


def log_in(browser, user):
    return lambda: browser.post(LOGIN_URL, {"username": user.username, "password": PASSWORD})


def check_out(user):
    browser = Client()
    browser.force_login(user)
    cart = Cart.objects.get(user=user, status=Cart.Status.OPEN)
    return lambda: browser.post(reverse("shop:checkout"), {**SHIPPING, "cart": cart.pk})


def pieces(items):
    counted = Counter()
    for product_id, quantity in items:
        counted[product_id] += quantity
    return counted


def assert_every_piece_once(user, wanted, stock_before):
    """Each wanted piece is in exactly one place: an order (with its stock taken) or the
    account's open cart; carts that became orders hold exactly what the orders hold."""
    ordered = pieces(OrderItem.objects.filter(order__user=user).values_list("product_id", "quantity"))
    open_cart = pieces(
        CartItem.objects.filter(cart__user=user, cart__status=Cart.Status.OPEN).values_list(
            "product_id", "quantity"
        )
    )
    in_ordered_carts = pieces(
        CartItem.objects.filter(cart__user=user, cart__status=Cart.Status.ORDERED).values_list(
            "product_id", "quantity"
        )
    )
    assert ordered + open_cart == wanted
    assert in_ordered_carts == ordered
    for product_id, before in stock_before.items():
        assert before - Product.objects.get(pk=product_id).stock == ordered[product_id]
    assert Cart.objects.filter(user__isnull=True, status=Cart.Status.OPEN).count() == 0
    return ordered, open_cart


@pytest.fixture
def shopper_with_cart():
    """A shopper whose account cart holds 1 piece of ``shirt``; 40 pieces of each product."""
    user = UserFactory()
    shirt, jeans = ProductFactory(stock=40), ProductFactory(stock=40)
    CartItemFactory(cart=CartFactory(user=user), product=shirt, quantity=1)
    return user, shirt, jeans


def test_a_login_during_checkout_moves_the_visitors_lines_to_a_new_cart(monkeypatch, shopper_with_cart):
    """The checkout has taken stock when the merge starts: the order keeps what it took,
    the visitor's lines wait in a new open cart."""
    user, shirt, jeans = shopper_with_cart
    browser = visitor_with_cart({shirt: 2, jeans: 3})
    run = Interleaving(monkeypatch)
    run.pause_in("_order_number", "checkout")  # called after the stock is taken
    run.start("checkout", check_out(user))
    run.start("login", log_in(browser, user), after="checkout")
    run.join()

    ordered, open_cart = assert_every_piece_once(
        user, Counter({shirt.pk: 3, jeans.pk: 3}), {shirt.pk: 40, jeans.pk: 40}
    )
    assert ordered == {shirt.pk: 1}
    assert open_cart == {shirt.pk: 2, jeans.pk: 3}


def test_a_checkout_during_a_login_orders_the_merged_lines(monkeypatch, shopper_with_cart):
    """The merge has read the account cart when the checkout starts: the checkout waits
    for the merge and orders everything, with its stock."""
    user, shirt, jeans = shopper_with_cart
    browser = visitor_with_cart({shirt: 2, jeans: 3})
    run = Interleaving(monkeypatch)
    run.pause_in("_bounded_quantity", "login")  # the merge's first line
    run.start("login", log_in(browser, user))
    run.start("checkout", check_out(user), after="login")
    run.join()

    ordered, open_cart = assert_every_piece_once(
        user, Counter({shirt.pk: 3, jeans.pk: 3}), {shirt.pk: 40, jeans.pk: 40}
    )
    assert ordered == {shirt.pk: 3, jeans.pk: 3}
    assert not open_cart


def log_in_at_once(monkeypatch, user, **browsers):
    """Each browser logs in to ``user``; every merge pauses before its first line until
    all have got that far."""
    run = Interleaving(monkeypatch)
    for name in browsers:
        run.pause_in("_bounded_quantity", name)
    for name, browser in browsers.items():
        run.start(name, log_in(browser, user))
    run.join()
    return run


def test_two_logins_at_once_add_up_both_visitor_carts(monkeypatch, shopper_with_cart):
    """Two browsers log in to the same account, both with the same product in their cart."""
    user, shirt, jeans = shopper_with_cart
    # Both carts start with jeans: both merges look for a jeans line before either adds one.
    phone, laptop = visitor_with_cart({jeans: 1, shirt: 2}), visitor_with_cart({jeans: 4})
    run = log_in_at_once(monkeypatch, user, phone=phone, laptop=laptop)

    assert all(response.status_code == 302 for response in run.responses.values())
    wanted = Counter({shirt.pk: 3, jeans.pk: 5})
    assert assert_every_piece_once(user, wanted, {shirt.pk: 40, jeans.pk: 40}) == (Counter(), wanted)
    assert Cart.objects.filter(user=user, status=Cart.Status.OPEN).count() == 1


def test_the_same_login_submitted_twice_at_once_merges_once(monkeypatch, shopper_with_cart):
    user, shirt, jeans = shopper_with_cart
    first = visitor_with_cart({shirt: 2, jeans: 1})
    second = Client()
    second.cookies = copy.deepcopy(first.cookies)  # the same browser session, a second request
    log_in_at_once(monkeypatch, user, first=first, second=second)

    wanted = Counter({shirt.pk: 3, jeans.pk: 1})
    assert assert_every_piece_once(user, wanted, {shirt.pk: 40, jeans.pk: 40}) == (Counter(), wanted)
