"""The catalogue page counts facets once per catalogue version, not on every request."""

import pytest
from django.core.cache import cache
from django.core.cache.utils import make_template_fragment_key
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.importing import import_catalogue
from tests.catalog_files import styles_line, write_catalogue
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    counting = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    return response, counting


def colour_counts(response):
    facet = next(f for f in response.context["facets"] if f["param"] == "baseColour")
    return dict(facet["options"])


@pytest.mark.parametrize("url", ["/", "/?gender=Men", "/?q=shirt&page=2"])
def test_a_second_visit_counts_nothing(client, url):
    ProductFactory.create_batch(30, name="Blue shirt")
    _, first = count_queries(client, url)
    _, second = count_queries(client, url)
    assert len(first) >= 7  # the total and every facet
    assert second == []


def test_a_saved_product_shows_in_the_counts_at_once(client):
    ProductFactory.create_batch(3, base_colour="Blue")
    assert colour_counts(client.get("/")) == {"Blue": 3}

    red = ProductFactory(base_colour="Red")
    assert colour_counts(client.get("/")) == {"Blue": 3, "Red": 1}
    red.is_active = False
    red.save()
    assert colour_counts(client.get("/")) == {"Blue": 3}
    ProductFactory(base_colour="Blue").delete()
    response = client.get("/")
    assert colour_counts(response) == {"Blue": 3} and response.context["result_count"] == 3


def test_an_import_shows_in_the_counts_at_once(client, tmp_path, media_root):
    import_catalogue(
        write_catalogue(tmp_path / "a", [styles_line(7, colour="Blue"), styles_line(8, colour="Blue")])
    )
    assert colour_counts(client.get("/")) == {"Blue": 2}
    # Re-imported with a new colour: an update the importer writes in bulk.
    import_catalogue(
        write_catalogue(tmp_path / "b", [styles_line(7, colour="Green"), styles_line(8, colour="Blue")])
    )
    assert colour_counts(client.get("/")) == {"Blue": 1, "Green": 1}


def test_the_filter_form_is_rendered_once_per_catalogue_version_and_filters(client):
    ProductFactory(article_type="Shirts", base_colour="Blue")
    first = client.get("/?gender=Men")
    fragment = make_template_fragment_key("catalogue_filters", [first.context["facets_key"], ""])
    assert "Shirts (1)" in first.content.decode()
    assert cache.get(fragment) is not None  # the next visit shows this, unrendered

    ProductFactory(article_type="Shirts", base_colour="Red")  # a new catalogue version
    second = client.get("/?gender=Men")

    assert second.context["facets_key"] != first.context["facets_key"]
    assert "Shirts (2)" in second.content.decode()
    assert '<option value="Red">Red (1)</option>' in second.content.decode()
