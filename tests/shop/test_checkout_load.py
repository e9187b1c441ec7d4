"""200 shoppers, 10 pieces: over real HTTP against a running server, exactly the stock is
sold and everybody else is told why, never with a server error.

Each shopper is a separate browser session (own cookie jar, own CSRF token) going through
the shopper's path the README documents: the product page's add-to-cart form and the
checkout form, or the cart and orders API. A pool of client threads sends the attempts
concurrently to gunicorn (worker processes with threads, each request on its own database
connection). Runs on SQLite (requests wait for the write lock) and PostgreSQL.
"""

import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html import unescape

import pytest
from django.db import connection
from django.urls import reverse

from catalog.models import Product
from shop.models import Order, OrderItem
from tests.factories import SHIPPING, ProductFactory
from tests.shop.gunicorn_server import gunicorn

pytestmark = pytest.mark.django_db(transaction=True)

SHOPPERS = 200
STOCK = 10
# Concurrent requests, each on its own database connection in the server. SQLite has one
# writer at a time: more requests at once would only lengthen the queue for its lock.
CONCURRENCY = {"postgresql": 16, "sqlite": 8}
TIMEOUT = 60
SOLD_OUT = re.compile(r"out of stock|not enough .* in stock", re.IGNORECASE)


@dataclass
class Attempt:
    """What one shopper got: an order number, or the message they were shown."""

    order: str = ""
    message: str = ""
    server_error: str = ""
    statuses: tuple = ()


class Browser:
    """One shopper's session: cookies kept, redirects followed, every status recorded."""

    def __init__(self, base_url):
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.statuses = []

    def cookie(self, name):
        return next((c.value for c in self.cookies if c.name == name), "")

    def request(self, method, path, data=None, json_body=None, headers=()):
        headers = dict(headers)
        body = None
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
        elif json_body is not None:
            body = json.dumps(json_body).encode()
            headers.update({"Content-Type": "application/json", "Accept": "application/json"})
        if method == "POST":
            headers["X-CSRFToken"] = self.cookie("csrftoken")
        request = urllib.request.Request(self.base_url + path, body, headers, method=method)
        try:
            with self.opener.open(request, timeout=TIMEOUT) as response:
                status, url, text = response.status, response.url, response.read().decode()
        except urllib.error.HTTPError as error:
            status, url, text = error.code, error.url, error.read().decode()
        self.statuses.append(status)
        return status, url, text


def page_messages(html):
    return [unescape(m) for m in re.findall(r'<p class="message message--\w+"[^>]*>(.*?)</p>', html, re.S)]


def form_value(html, name):
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    return match.group(1) if match else ""


def through_the_pages(base_url, product):
    """Product page -> Add to cart -> Checkout -> Place order, as a browser without JavaScript."""
    browser = Browser(base_url)
    attempt = Attempt()
    _, _, html = browser.request("GET", product.get_absolute_url())
    token = form_value(html, "csrfmiddlewaretoken")
    _, _, html = browser.request(
        "POST",
        reverse("shop:add"),
        {
            "csrfmiddlewaretoken": token,
            "product_id": product.pk,
            "quantity": 1,
            "next": product.get_absolute_url(),
        },
    )
    shown = page_messages(html)
    if not any(message.startswith("Added ") for message in shown):
        attempt.message = " ".join(shown)
        return attempt, browser
    _, _, html = browser.request("GET", reverse("shop:checkout"))
    form = {
        **SHIPPING,
        "cart": form_value(html, "cart"),
        "csrfmiddlewaretoken": form_value(html, "csrfmiddlewaretoken"),
    }
    _, url, html = browser.request("POST", reverse("shop:checkout"), form)
    if url.endswith("/confirmation/"):
        attempt.order = re.search(r"Order <strong>(\w+)</strong>", html).group(1)
    else:
        attempt.message = " ".join(page_messages(html))
    return attempt, browser


def through_the_api(base_url, product):
    """GET /api/cart/ (CSRF cookie) -> POST /api/cart/items/ -> POST /api/orders/."""
    browser = Browser(base_url)
    attempt = Attempt()
    browser.request("GET", "/api/cart/")
    status, _, text = browser.request(
        "POST", "/api/cart/items/", json_body={"product_id": product.pk, "quantity": 1}
    )
    if status != 200:
        attempt.message = json.loads(text)["detail"]
        return attempt, browser
    status, _, text = browser.request("POST", "/api/orders/", json_body=SHIPPING)
    if status == 201:
        attempt.order = json.loads(text)["number"]
    else:
        attempt.message = json.loads(text)["detail"]
    return attempt, browser


def shop_at_once(shop, base_url, product):
    def one_shopper(_):
        try:
            attempt, browser = shop(base_url, product)
        except Exception as exc:  # noqa: BLE001  (a dropped connection or an unexpected page)
            return Attempt(server_error=repr(exc))
        attempt.statuses = tuple(browser.statuses)
        if any(status >= 500 for status in browser.statuses):
            attempt.server_error = f"HTTP {max(browser.statuses)}"
        return attempt

    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY[connection.vendor]) as pool:
        attempts = list(pool.map(one_shopper, range(SHOPPERS)))
    return attempts, time.monotonic() - started


@pytest.fixture(scope="module")
def shop_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn as in production: 2 worker processes, as many threads in all as clients."""
    threads = CONCURRENCY[connection.vendor] // 2
    with (
        django_db_blocker.unblock(),
        gunicorn(tmp_path_factory.mktemp("server"), threads=threads) as base_url,
    ):
        yield base_url


@pytest.mark.parametrize("shop", [through_the_pages, through_the_api], ids=["pages", "api"])
def test_200_shoppers_buy_exactly_the_10_pieces_in_stock(shop, shop_server):
    product = ProductFactory(stock=STOCK)

    attempts, seconds = shop_at_once(shop, shop_server, product)

    errors = [attempt.server_error for attempt in attempts if attempt.server_error]
    orders = [attempt.order for attempt in attempts if attempt.order]
    refused = [attempt.message for attempt in attempts if not attempt.order]
    kinds = Counter(re.sub(r"\d+", "N", message.replace(product.display_name, "X")) for message in refused)
    statuses = Counter(status for attempt in attempts for status in attempt.statuses)
    print(
        f"\n{shop.__name__}: {SHOPPERS} shoppers in {seconds:.1f} s, {sum(statuses.values())} requests "
        f"{dict(statuses)}, {len(orders)} orders, refused: {dict(kinds)}, errors: {len(errors)}"
    )
    assert errors == []
    assert len(orders) == len(set(orders)) == STOCK
    assert Product.objects.get(pk=product.pk).stock == 0
    assert sum(OrderItem.objects.filter(product=product).values_list("quantity", flat=True)) == STOCK
    assert sorted(Order.objects.values_list("number", flat=True)) == sorted(orders)
    assert len(refused) == SHOPPERS - STOCK
    assert all(SOLD_OUT.search(message) for message in refused), kinds
