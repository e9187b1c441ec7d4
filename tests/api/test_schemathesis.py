"""Every operation of /api/schema/ fuzzed with Schemathesis through the whole Django stack
(middleware, URL routing, the test database), as a visitor and as a staff member.

Each response must not be a 5xx and must match the schema: status code, content type and
body. Generation is derandomized and bounded, so a run is repeatable and takes about a minute.
"""

import pytest
import schemathesis
from django.contrib.auth.models import Permission
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.middleware.csrf import CSRF_SECRET_LENGTH
from django.test import Client
from django.utils.crypto import get_random_string
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import CartItemFactory, OrderFactory, ProductFactory, UserFactory

# What config/wsgi.py serves, without its web-server start-up (it bars this process from
# converting the model, which other tests do).
APPLICATION = get_wsgi_application()
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
PRODUCT_IDS = range(1, 6)
ORDER_NUMBER = "F0000001"
# Only staff may write products: a visitor gets a 403 whatever the body, so the body's
# boundary cases (hundreds of requests) are sent as staff only.
STAFF_WRITES = ["products_create", "products_partial_update"]


def fuzz_config(visitor):
    """Half of the generated ids are ones that exist, so requests get past their 404s."""
    return schemathesis.Config.from_dict(
        {
            "dictionaries": {"products": {"values": list(PRODUCT_IDS)}, "orders": {"values": [ORDER_NUMBER]}},
            "parameters": {
                name: {"dictionary": dictionary, "probability": 0.5}
                for name, dictionary in [
                    ("path.id", "products"),
                    ("path.product_id", "products"),
                    ("body.product_id", "products"),
                    ("path.number", "orders"),
                ]
            },
            "operations": [{"include-operation-id": STAFF_WRITES, "phases": {"coverage": {"enabled": False}}}]
            if visitor
            else [],
        }
    )


def api_schema(visitor):
    return schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", APPLICATION, config=fuzz_config(visitor)
    )


visitor_schema = api_schema(visitor=True)
staff_schema = api_schema(visitor=False)
bounded = settings(
    max_examples=15, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(autouse=True)
def same_database_connection():
    """Requests run inside the test's transaction, as with Django's test client: the WSGI
    handler would otherwise close the connection at the end of each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def catalogue(db):
    """Products with small ids, which the generated ids hit (PRODUCT_IDS)."""
    return [ProductFactory(id=pk, stock=pk) for pk in PRODUCT_IDS]


def browser(session=None):
    """Cookies and headers as a browser's script sends them: the CSRF cookie and its header,
    and the session cookie of a logged-in member."""
    token = get_random_string(CSRF_SECRET_LENGTH)
    cookies = {"csrftoken": token, **({"sessionid": session} if session else {})}
    return {"cookies": cookies, "headers": {"X-CSRFToken": token}}


@pytest.fixture
def visitor(catalogue):
    return browser()


@pytest.fixture
def staff(catalogue):
    """A staff member with the catalogue's write permissions (not a superuser), a cart line
    and an order."""
    member = UserFactory(is_staff=True)
    member.user_permissions.add(*Permission.objects.filter(codename__in=["add_product", "change_product"]))
    CartItemFactory(cart__user=member, product_id=PRODUCT_IDS[0])
    OrderFactory(user=member, number=ORDER_NUMBER)
    client = Client()
    client.force_login(member)
    return browser(client.cookies["sessionid"].value)


@visitor_schema.parametrize()
@bounded
def test_api_answers_visitors_as_documented(case, visitor):
    case.call_and_validate(checks=CHECKS, **visitor)


@staff_schema.parametrize()
@bounded
def test_api_answers_staff_as_documented(case, staff):
    case.call_and_validate(checks=CHECKS, **staff)
