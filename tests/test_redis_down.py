"""Services mode with the Redis server stopped or hung: every page and API answers within a
bounded time without a 5xx, saves are kept, and the sweep queues the work once Redis is back.

A real redis-server is started on a spare port and stopped (killed, or frozen with
SIGSTOP so connections hang) in the middle of the test.
"""

import time

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile

import config.cache
from catalog.models import Product
from config.celery import app as celery_app
from recommender import queueing, refresh
from recommender.models import PendingEmbedding
from tests.factories import SHIPPING, EmbeddingFactory, ProductFactory
from tests.images import garment_photo, image_bytes
from tests.workers import forget_broker_connections

pytestmark = pytest.mark.django_db

# A request may wait this long at most for Redis, with REDIS_SOCKET_TIMEOUT at 0.5 s.
MAX_SECONDS = 4.0


@pytest.fixture
def services_mode(redis_server, settings, monkeypatch):
    """This process as a web node in services mode, with short timeouts."""
    monkeypatch.setattr(config.cache, "RETRY_AFTER", 0.5)
    saved = {
        key: celery_app.conf[key] for key in ("task_always_eager", "broker_url", "broker_transport_options")
    }
    settings.REDIS_URL = redis_server.url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    timeouts = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.ForgivingRedisCache",
            "LOCATION": redis_server.url,
            "OPTIONS": timeouts,
        }
    }
    celery_app.conf.update(
        task_always_eager=False,
        broker_url=redis_server.url,
        broker_transport_options={**settings.CELERY_BROKER_TRANSPORT_OPTIONS, **timeouts, "max_retries": 0},
        broker_connection_timeout=0.5,
    )
    forget_broker_connections()
    yield redis_server
    celery_app.conf.update(saved)
    forget_broker_connections()


@pytest.fixture
def catalogue(db):
    products = ProductFactory.create_batch(8, with_image=True)
    for product in products:
        EmbeddingFactory(product=product)
    return products


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_answers(response, seconds, what):
    assert response.status_code < 500, f"{what}: {response.status_code}"
    assert seconds < MAX_SECONDS, f"{what} took {seconds:.1f}s"


def walk_the_shop(client, product):
    """Browse, use the API, fill the cart and check out; returns the order page response."""
    for url in ["/", f"/products/{product.pk}/", "/visual/search/", "/cart/"]:
        assert_answers(*timed(lambda url=url: client.get(url)), url)
    for url in ["/api/products/", f"/api/products/{product.pk}/similar/?k=5", "/api/cart/"]:
        response, seconds = timed(lambda url=url: client.get(url))
        assert_answers(response, seconds, url)
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
    response, seconds = timed(lambda: client.post("/cart/add/", {"product_id": product.pk, "quantity": 1}))
    assert_answers(response, seconds, "add to cart")
    response, seconds = timed(lambda: client.post("/cart/checkout/", SHIPPING))
    assert_answers(response, seconds, "checkout")
    # Rate-limited forms read the cache; a photo that is not one gets the form's message.
    not_a_photo = ContentFile(b"plain text", name="photo.jpg")
    response, seconds = timed(lambda: client.post("/visual/search/", {"photo": not_a_photo}))
    assert_answers(response, seconds, "photo search")
    assert response.status_code in (200, 400)
    response, seconds = timed(lambda: client.post("/accounts/login/", {"username": "x", "password": "y"}))
    assert_answers(response, seconds, "log in")


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
def test_the_shop_works_with_redis_down_and_catches_up_when_it_is_back(
    services_mode, catalogue, client, fault, django_capture_on_commit_callbacks
):
    redis_server = services_mode
    product = catalogue[0]
    stock = product.stock

    def with_redis_down():
        walk_the_shop(client, product)
        # Saves are kept: a new photo stays recorded for embedding, a removed photo commits
        # (what runs after the commit, sending tasks and asking for a rebuild, is run too).
        with django_capture_on_commit_callbacks(execute=True):
            new, seconds = timed(lambda: ProductFactory(image=ContentFile(image_bytes(), name="new.jpg")))
        assert seconds < MAX_SECONDS
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            catalogue[1].image = ""
            _, seconds = timed(catalogue[1].save)
        assert callbacks and seconds < MAX_SECONDS
        return new

    if fault == "stopped":
        redis_server.stop()
        new = with_redis_down()
        redis_server.start()
    else:
        with redis_server.frozen():
            new = with_redis_down()

    product.refresh_from_db()
    assert product.stock == stock - 1, "the order was not placed"
    assert Product.objects.filter(pk=new.pk).exists()
    assert PendingEmbedding.objects.filter(product_id=new.pk).exists(), "the embedding request was lost"

    # Redis is back: the sweep (celery beat's) queues what was left behind.
    time.sleep(0.6)  # the cache tries Redis again
    cache.clear()
    queueing.sweep()
    assert not PendingEmbedding.objects.exists()
    assert redis_server.queued_messages() >= 2  # the new product's embedding and a rebuild


def test_api_errors_stay_json_with_redis_down(services_mode, catalogue, client):
    services_mode.stop()
    for response in [
        client.get("/api/products/999999/"),
        client.post("/api/search/image", {}),
        client.get("/api/products/?page=999"),
    ]:
        assert 400 <= response.status_code < 500
        assert response["Content-Type"] == "application/json"
        assert response.json()["detail"]


@pytest.mark.slow
def test_photo_search_works_with_redis_down(services_mode, client):
    """The photo-search throttle reads the cache: with Redis down it lets searches through."""
    products = [
        ProductFactory(image=ContentFile(garment_photo(c), name="p.jpg"))
        for c in [(30, 60, 200), (200, 30, 30)]
    ]
    refresh.embed_products([p.pk for p in products])
    services_mode.stop()
    photo = ContentFile(garment_photo((30, 60, 200)), name="shirt.jpg")
    response, seconds = timed(lambda: client.post("/api/search/image", {"image": photo}))
    assert response.status_code == 200, response.content
    assert response.json()["results"]
    page, _ = timed(
        lambda: client.post(
            "/visual/search/", {"photo": ContentFile(garment_photo((30, 60, 200)), name="a.jpg")}
        )
    )
    assert page.status_code == 200
