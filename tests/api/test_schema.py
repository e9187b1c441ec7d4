"""The OpenAPI schema, the docs page and API-wide error bodies."""

import json

import pytest
from django.core.management import call_command

API_PATHS = {
    "/api/products/": {"get", "post"},
    "/api/products/{id}/": {"get", "patch"},
    "/api/cart/": {"get"},
    "/api/cart/items/": {"post"},
    "/api/cart/items/{product_id}/": {"patch", "delete"},
    "/api/orders/": {"get", "post"},
    "/api/orders/{number}/": {"get"},
}


@pytest.mark.django_db
def test_schema_lists_every_endpoint(client):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for path, methods in API_PATHS.items():
        assert path in paths
        assert methods <= set(paths[path])


@pytest.mark.django_db
def test_schema_documents_the_product_filters(client):
    schema = json.loads(client.get("/api/schema/", {"format": "json"}).content)

    parameters = {p["name"] for p in schema["paths"]["/api/products/"]["get"]["parameters"]}

    assert {
        "gender",
        "masterCategory",
        "subCategory",
        "articleType",
        "baseColour",
        "season",
        "usage",
        "q",
        "page",
        "page_size",
    } <= parameters


def test_schema_generates_without_warnings(tmp_path):
    # Raises SchemaGenerationError on any warning or on an invalid OpenAPI document.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))

    assert "/api/cart/items/{product_id}/" in (tmp_path / "schema.yml").read_text()


@pytest.mark.django_db
def test_docs_page_is_served(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("address", ["/api/nothing-here/", "/api/products/1/nothing/"])
def test_unknown_api_address_answers_json(client, method, address):
    response = getattr(client, method)(address)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"detail": "No API endpoint at this address."}
