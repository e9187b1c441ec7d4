"""Staff edits never undo sales: the admin applies only the staff member's own change to
the stock, however much was sold between loading and saving the form (SQLite and
PostgreSQL: `make test-postgres`)."""

import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db.models import F
from django.urls import reverse

from catalog.models import Product
from catalog.stock import adjust_stock
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db
CHANGELIST_URL = reverse("admin:catalog_product_changelist")


def change_url(product):
    return reverse("admin:catalog_product_change", args=[product.pk])


def sell(product, pieces):
    """A checkout taking stock meanwhile (the same conditional UPDATE checkout makes)."""
    Product.objects.filter(pk=product.pk, stock__gte=pieces).update(stock=F("stock") - pieces)


def change_form_data(staff_client, product):
    """The change form's fields as the page renders them (stock_loaded included)."""
    html = staff_client.get(change_url(product)).content.decode()
    loaded = re.search(r'name="stock_loaded" value="(\d+)"', html)
    assert loaded, "the change form carries the stock it showed"
    return {
        "id": str(product.pk),
        "name": product.name,
        "price": str(product.price),
        "stock": str(product.stock),
        "stock_loaded": loaded.group(1),
        "is_active": "on",
        "gender": product.gender,
        "master_category": product.master_category,
        "sub_category": product.sub_category,
        "article_type": product.article_type,
        "base_colour": product.base_colour,
        "season": product.season,
        "usage": product.usage,
        "year": product.year or "",
        "_save": "Save",
    }


def test_changing_the_price_after_a_sale_keeps_the_sale(staff_client):
    product = ProductFactory(price=Decimal("10.00"), stock=10)
    data = change_form_data(staff_client, product)
    sell(product, 3)

    response = staff_client.post(change_url(product), {**data, "price": "12.00"})

    assert response.status_code == 302, response.content.decode()[:2000]
    product.refresh_from_db()
    assert (product.price, product.stock) == (Decimal("12.00"), 7)


def test_receiving_stock_after_a_sale_adds_to_what_is_left_and_says_so(staff_client):
    product = ProductFactory(stock=10)
    data = change_form_data(staff_client, product)
    sell(product, 3)

    response = staff_client.post(change_url(product), {**data, "stock": "15"})

    product.refresh_from_db()
    assert product.stock == 12  # 10 - 3 sold + 5 received
    texts = [m.message for m in get_messages(response.wsgi_request)]
    assert any("moved by -3" in text and "now 12" in text for text in texts)


def test_the_product_list_never_writes_back_a_stale_stock(staff_client):
    sold, edited = (
        ProductFactory(price=Decimal("10.00"), stock=10),
        ProductFactory(price=Decimal("5.00"), stock=4),
    )
    html = staff_client.get(CHANGELIST_URL).content.decode()
    assert 'name="form-0-stock_loaded"' in html
    sell(sold, 2)
    rows = {0: (sold, "10.00", "10"), 1: (edited, "6.00", "6")}
    data = {"form-TOTAL_FORMS": "2", "form-INITIAL_FORMS": "2", "_save": "Save"}
    loaded = {sold.pk: "10", edited.pk: "4"}
    for i, (product, price, stock) in rows.items():
        data.update(
            {
                f"form-{i}-id": str(product.pk),
                f"form-{i}-price": price,
                f"form-{i}-stock": stock,
                f"form-{i}-stock_loaded": loaded[product.pk],
                f"form-{i}-is_active": "on",
            }
        )

    response = staff_client.post(CHANGELIST_URL, data)

    assert response.status_code == 302
    sold.refresh_from_db()
    edited.refresh_from_db()
    assert (sold.price, sold.stock) == (Decimal("10.00"), 8)  # untouched row: the sale stays
    assert (edited.price, edited.stock) == (Decimal("6.00"), 6)


def test_removing_more_than_is_left_stops_at_zero():
    product = ProductFactory(stock=2)

    assert adjust_stock(product.pk, by=-5) == 0
    product.refresh_from_db()
    assert product.stock == 0
