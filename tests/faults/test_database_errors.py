"""Errors raised by the database itself in the middle of a catalogue import and of a
checkout: a trigger refuses one particular row (RAISE(ABORT) on SQLite, RAISE EXCEPTION on
PostgreSQL), so the failure happens inside the real transaction, after earlier statements
of it succeeded. Runs on whichever database DATABASE_URL names (CI runs both)."""

import hashlib

import pytest
from django.db import connection
from django.urls import reverse

from catalog.importing import import_catalogue
from catalog.models import ImportRun, Product
from recommender.queueing import EMBED_TASK
from shop.models import Cart, Order, OrderItem
from tests.catalog_files import stored_files, styles_line, write_catalogue
from tests.factories import SHIPPING, ProductFactory, UserFactory
from tests.images import image_bytes
from tests.shop_pages import add_to_cart, checkout_form
from tests.workers import queued_tasks, redis_client, services_mode

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = "redis://127.0.0.1:6379/14"
MESSAGE = "refused by the database"


class Refusals:
    """Triggers that make the database raise when a row of ``table`` meets ``condition``
    (SQL over NEW and OLD) on ``event``."""

    def __init__(self):
        self.made = []

    def __call__(self, table, event, condition):
        name = f"fault_{len(self.made)}"
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute(
                    f"CREATE TRIGGER {name} BEFORE {event} ON {table} WHEN {condition} "
                    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
                )
            else:
                cursor.execute(
                    f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                    f"$$ BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$"
                )
                cursor.execute(
                    f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW "
                    f"WHEN ({condition}) EXECUTE FUNCTION {name}()"
                )
        self.made.append((name, table))

    def lift(self):
        with connection.cursor() as cursor:
            for name, table in self.made:
                if connection.vendor == "sqlite":
                    cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
                else:
                    cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                    cursor.execute(f"DROP FUNCTION IF EXISTS {name}()")
        self.made.clear()


@pytest.fixture
def refuse():
    refusals = Refusals()
    yield refusals
    refusals.lift()


@pytest.fixture
def broker(settings):
    """Tasks go to a Redis queue nobody consumes, so the test sees which products the
    import asked to embed (and no CNN runs)."""
    with services_mode(settings, REDIS_URL, visibility_timeout=60):
        yield redis_client(REDIS_URL)


def embedding_requested(broker):
    return sorted(
        pk for message in queued_tasks(broker) if message.task == EMBED_TASK for pk in message.args[0]
    )


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# Catalogue import


def test_a_row_refused_mid_import_is_reported_and_the_committed_batches_stay(
    tmp_path, media_root, broker, refuse
):
    refuse("catalog_product", "INSERT", "NEW.id = 4")
    folder = write_catalogue(tmp_path / "cat", [styles_line(i) for i in range(1, 7)], images=range(1, 7))

    report = import_catalogue(folder, batch_size=2)  # batches (1, 2), (3, 4), (5, 6)

    assert sorted(Product.objects.values_list("pk", flat=True)) == [1, 2, 3, 5, 6]
    assert report.created == 5
    assert [(row["line"], row["id"], row["outcome"]) for row in report.rejected_rows] == [
        (5, "4", "rejected")
    ]
    assert MESSAGE in report.rejected_rows[0]["reason"]
    run = ImportRun.objects.get()
    assert (run.created, run.rejected, run.finished_at is not None) == (5, 1, True)
    assert [row["id"] for row in run.rejected_rows] == ["4"]
    # Only products that were written are embedded, and only their images are stored.
    assert set(embedding_requested(broker)) == {1, 2, 3, 5, 6}
    assert stored_files(media_root) == ["1.jpg", "2.jpg", "3.jpg", "5.jpg", "6.jpg"]


def test_a_refused_update_keeps_the_products_image(tmp_path, media_root, broker, refuse):
    folder = write_catalogue(tmp_path / "cat", [styles_line(i) for i in range(1, 5)], images=range(1, 5))
    import_catalogue(folder, batch_size=2)
    broker.flushdb()
    refuse("catalog_product", "UPDATE", "NEW.id = 4")
    new_pictures = {pk: image_bytes(colour=(0, 0, 200 + pk)) for pk in (3, 4)}
    write_catalogue(folder, [styles_line(i, "Renamed") for i in range(1, 5)], images=new_pictures)

    report = import_catalogue(folder, batch_size=2)

    assert [row["id"] for row in report.rejected_rows] == ["4"]
    refused, accepted = Product.objects.get(pk=4), Product.objects.get(pk=3)
    assert (refused.name, accepted.name) == ("Blue Tee", "Renamed")
    assert accepted.image_checksum == sha256(new_pictures[3])
    assert set(embedding_requested(broker)) == {3}
    # Each product's file is the picture its row describes; nothing else is left.
    for product in (refused, accepted):
        with product.image.open("rb") as stored:
            assert sha256(stored.read()) == product.image_checksum
    assert refused.image_checksum != sha256(new_pictures[4])
    assert stored_files(media_root) == ["1.jpg", "2.jpg", "3.jpg", "4.jpg"]


# Checkout


@pytest.fixture
def shopper_with_cart(client):
    """A signed-in shopper with three products in the cart (2, 1 and 3 pieces)."""
    user = UserFactory()
    client.force_login(user)
    products = [ProductFactory(stock=5) for _ in range(3)]
    for product, quantity in zip(products, (2, 1, 3)):
        add_to_cart(client, product, quantity)
    return client, Cart.objects.get(user=user), products


def cart_contents(cart):
    return sorted(cart.items.values_list("product_id", "quantity"))


def place_through_page(client):
    return client.post(reverse("shop:checkout"), checkout_form(client))


def place_through_api(client):
    return client.post("/api/orders/", SHIPPING, content_type="application/json")


REFUSALS = {
    # The second line's stock update fails after the first line's stock was taken.
    "stock update refused": lambda products: ("catalog_product", "UPDATE", f"NEW.id = {products[1].pk}"),
    # The order and all stock updates are written; an order line then fails.
    "order line refused": lambda products: ("shop_orderitem", "INSERT", f"NEW.product_id = {products[2].pk}"),
}


@pytest.mark.parametrize("place", [place_through_page, place_through_api], ids=["page", "api"])
@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_database_error_mid_checkout_leaves_no_order_and_changes_no_stock(
    shopper_with_cart, refuse, refusal, place
):
    client, cart, products = shopper_with_cart
    before = cart_contents(cart)
    refuse(*REFUSALS[refusal](products))

    response = place(client)

    # A clear "try again" (the page shows the form again; the API answers JSON).
    assert response.status_code == 503
    assert "could not be placed just now" in response.content.decode()
    assert not Order.objects.exists()
    assert not OrderItem.objects.exists()
    assert [Product.objects.get(pk=p.pk).stock for p in products] == [5, 5, 5]
    cart.refresh_from_db()
    assert cart.status == Cart.Status.OPEN
    assert cart_contents(cart) == before

    # Once the database accepts the rows again, the same cart checks out in full.
    refuse.lift()
    assert place(client).status_code in (201, 302)
    order = Order.objects.get()
    assert sorted(order.items.values_list("product_id", "quantity")) == before
    assert [Product.objects.get(pk=p.pk).stock for p in products] == [3, 4, 2]
