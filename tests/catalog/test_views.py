"""The catalogue pages a shopper browses: list with filters, search and pages; product page."""

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.filters import FACETS
from recommender.refresh import rebuild_index
from tests.factories import EmbeddingFactory, ProductFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("catalog:product_list")


def shown_ids(response):
    """Ids of the products whose cards are in the page's main grid, in page order
    (not those recommended or similar)."""
    html = response.content.decode()
    start = html.find('<div class="product-grid">')
    grid = html[start:] if start >= 0 else ""
    return [int(pk) for pk in re.findall(r'class="product-card__link" href="/products/(\d+)/"', grid)]


def test_list_shows_active_products_only(client):
    active = ProductFactory(name="Navy Polo")
    hidden = ProductFactory(name="Withdrawn Polo", is_active=False)

    response = client.get(LIST_URL)

    assert response.status_code == 200
    assert shown_ids(response) == [active.pk]
    assert hidden.name not in response.content.decode()
    assert "1 product<" in response.content.decode()


# One product differing from the default factory product in exactly the facet's field.
FACET_VALUES = {
    "gender": ("gender", "Women"),
    "masterCategory": ("master_category", "Footwear"),
    "subCategory": ("sub_category", "Bottomwear"),
    "articleType": ("article_type", "Jeans"),
    "baseColour": ("base_colour", "Red"),
    "season": ("season", "Winter"),
    "usage": ("usage", "Formal"),
}


def test_every_facet_is_tested():
    assert set(FACET_VALUES) == set(FACETS)


@pytest.mark.parametrize("param", sorted(FACET_VALUES))
def test_each_facet_filters_the_list_and_shows_counts(client, param):
    field, value = FACET_VALUES[param]
    matching = [ProductFactory(**{field: value}) for _ in range(2)]
    ProductFactory()

    unfiltered = client.get(LIST_URL).content.decode()
    response = client.get(LIST_URL, {param: value})

    assert sorted(shown_ids(response)) == sorted(p.pk for p in matching)
    assert f'<option value="{value}">{value} (2)</option>' in unfiltered
    assert f'<option value="{value}" selected>{value} (2)</option>' in response.content.decode()
    assert "2 products" in response.content.decode()


def test_search_matches_every_word_in_any_order(client):
    slim = ProductFactory(name="Blue Slim Fit Jeans")
    ProductFactory(name="Blue Shirt")
    ProductFactory(name="Black Jeans")

    response = client.get(LIST_URL, {"q": "jeans BLUE"})

    assert shown_ids(response) == [slim.pk]
    assert "Results for “jeans BLUE”" in response.content.decode()


def test_filters_and_search_combine(client):
    wanted = ProductFactory(
        name="Red Summer Dress", gender="Women", base_colour="Red", article_type="Dresses"
    )
    ProductFactory(name="Red Summer Dress for men", gender="Men", base_colour="Red", article_type="Dresses")
    ProductFactory(name="Blue Summer Dress", gender="Women", base_colour="Blue", article_type="Dresses")
    ProductFactory(name="Red Winter Coat", gender="Women", base_colour="Red", article_type="Jackets")

    response = client.get(LIST_URL, {"q": "dress", "gender": "Women", "baseColour": "Red"})

    assert shown_ids(response) == [wanted.pk]
    page = response.content.decode()
    # The active filters can be removed one by one, keeping the others.
    assert 'href="?q=dress&amp;baseColour=Red"' in page
    assert 'href="?q=dress&amp;gender=Women"' in page
    assert 'href="?gender=Women&amp;baseColour=Red"' in page


def test_no_match_says_so(client):
    ProductFactory(name="Blue Shirt")

    response = client.get(LIST_URL, {"q": "umbrella"})

    assert shown_ids(response) == []
    assert "No products match" in response.content.decode()


def test_pagination_splits_by_page_size_and_keeps_filters(client, settings):
    settings.CATALOG_PAGE_SIZE = 24
    women = [ProductFactory(gender="Women") for _ in range(30)]
    ProductFactory(gender="Men")

    first = client.get(LIST_URL, {"gender": "Women"})
    second = client.get(LIST_URL, {"gender": "Women", "page": 2})

    assert shown_ids(first) == [p.pk for p in women[:24]]
    assert shown_ids(second) == [p.pk for p in women[24:]]
    assert "30 products" in first.content.decode()
    assert 'href="?gender=Women&amp;page=2" rel="next"' in first.content.decode()
    assert 'href="?gender=Women&amp;page=1" rel="prev"' in second.content.decode()


def test_a_page_that_is_not_a_number_shows_the_first_page(client, settings):
    settings.CATALOG_PAGE_SIZE = 2
    products = [ProductFactory() for _ in range(5)]

    response = client.get(LIST_URL, {"page": "abc"})

    assert response.status_code == 200
    assert shown_ids(response) == [products[0].pk, products[1].pk]


@pytest.mark.parametrize("page", ["99", "0"])
def test_a_page_out_of_range_shows_the_last_page(client, settings, page):
    settings.CATALOG_PAGE_SIZE = 2
    products = [ProductFactory() for _ in range(5)]

    response = client.get(LIST_URL, {"page": page})

    assert response.status_code == 200
    assert shown_ids(response) == [products[4].pk]


def test_product_card_has_image_or_placeholder_and_add_to_cart_form(client):
    pictured = ProductFactory(with_image=True)
    plain = ProductFactory(article_type="Caps")
    sold_out = ProductFactory(stock=0)

    page = client.get(LIST_URL, {"season": "Summer"}).content.decode()

    assert f'src="{pictured.image_url}"' in page
    assert 'product-card__image--placeholder" aria-hidden="true">Caps</div>' in page
    forms = re.findall(r'<form class="add-to-cart-form".*?</form>', page, re.DOTALL)
    assert len(forms) == 2  # the sold-out product has a disabled button instead
    assert all('name="next" value="/?season=Summer"' in form for form in forms)
    assert f'name="product_id" value="{plain.pk}"' in page
    assert f'name="product_id" value="{sold_out.pk}"' not in page
    assert "disabled>Out of stock</button>" in page


def test_header_search_box_keeps_the_search_term(client):
    page = client.get(LIST_URL, {"q": "linen shirt"}).content.decode()

    assert 'name="q" value="linen shirt"' in page
    assert 'href="/visual/search/"' in page


def queries_for(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("logged_in", [False, True])
def test_list_page_queries_do_not_grow_with_products(client, user, logged_in):
    if logged_in:
        client.force_login(user)
    ProductFactory.create_batch(3, with_image=True)
    client.post(reverse("shop:add"), {"product_id": ProductFactory().pk})
    few = queries_for(client, LIST_URL)
    ProductFactory.create_batch(30, with_image=True)
    many = queries_for(client, LIST_URL)
    assert many == few
    # page + count + one grouped count per facet, the header's cart, recommendations
    assert many <= 2 + len(FACETS) + 12


def test_product_page_shows_every_attribute(client):
    product = ProductFactory(
        name="Puma Men Grey T-shirt",
        gender="Men",
        master_category="Apparel",
        sub_category="Topwear",
        article_type="Tshirts",
        base_colour="Grey",
        season="Summer",
        year=2011,
        usage="Sports",
        price="24.50",
        stock=12,
    )

    response = client.get(product.get_absolute_url())

    page = response.content.decode()
    assert response.status_code == 200
    for label, value in [
        ("Gender", "Men"),
        ("Category", "Apparel"),
        ("Subcategory", "Topwear"),
        ("Type", "Tshirts"),
        ("Colour", "Grey"),
        ("Season", "Summer"),
        ("Year", "2011"),
        ("Usage", "Sports"),
    ]:
        assert f"<dt>{label}</dt><dd>{value}</dd>" in page
    assert '<h1 class="product__name">Puma Men Grey T-shirt</h1>' in page
    assert "€24.50" in page


@pytest.mark.parametrize(
    "stock, label, buyable",
    [(0, "Out of stock", False), (1, "Only 1 left", True), (3, "Only 3 left", True), (40, "In stock", True)],
)
def test_product_page_tells_stock_and_disables_buying_when_sold_out(client, stock, label, buyable):
    product = ProductFactory(stock=stock)

    page = client.get(product.get_absolute_url()).content.decode()

    assert f">{label}</p>" in page
    form = re.search(r'<form class="add-to-cart-form product__buy".*?</form>', page, re.DOTALL).group(0)
    assert ("disabled" not in form) is buyable
    if buyable:
        assert f'max="{min(stock, 99)}"' in form


def test_product_page_image(client):
    product = ProductFactory(with_image=True)

    page = client.get(product.get_absolute_url()).content.decode()

    assert f'class="product__image" src="{product.image.url}?v={product.image_checksum[:12]}"' in page


@pytest.mark.parametrize("make", [lambda: ProductFactory(is_active=False).pk, lambda: 987654])
def test_inactive_or_unknown_products_are_not_found(client, make):
    response = client.get(reverse("catalog:product_detail", args=[make()]))

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_product_page_queries_do_not_grow_with_similar_products(client):
    product = ProductFactory(with_image=True)
    EmbeddingFactory(product=product, cnn=[1.0, 0.0, 0.0])
    neighbours = ProductFactory.create_batch(5, with_image=True)
    for neighbour in neighbours:
        EmbeddingFactory(product=neighbour, cnn=[1.0, 0.1, 0.0])
    rebuild_index()
    cache.clear()  # the cards are rendered, not taken from the cache
    few = queries_for(client, product.get_absolute_url())
    for neighbour in ProductFactory.create_batch(10, with_image=True):
        EmbeddingFactory(product=neighbour, cnn=[1.0, 0.2, 0.0])
    rebuild_index()
    response = client.get(product.get_absolute_url())
    assert len(re.findall(r'class="product-card__link"', response.content.decode())) == 5
    cache.clear()
    assert queries_for(client, product.get_absolute_url()) == few


def _render_with_request(template, context):
    request = RequestFactory().get("/somewhere/?x=1")
    return render_to_string(template, context, request=request)


def test_similar_products_section_appears_only_when_there_are_some(client):
    alone = ProductFactory(article_type="Kurtas")
    assert "Similar products" not in client.get(alone.get_absolute_url()).content.decode()
    product = ProductFactory(article_type="Watches")
    EmbeddingFactory(product=product, cnn=[1.0, 0.0, 0.0])
    similar = ProductFactory.create_batch(2, article_type="Watches")
    for item in similar:
        EmbeddingFactory(product=item, cnn=[1.0, 0.1, 0.0])
    rebuild_index()

    page = client.get(f"{product.get_absolute_url()}?x=1").content.decode()

    assert "Similar products" in page
    for item in similar:
        assert f'name="product_id" value="{item.pk}"' in page
    assert page.count(f'name="next" value="{product.get_absolute_url()}?x=1"') == 3  # its own form too


def test_recommended_section_appears_only_when_given():
    recommended = ProductFactory.create_batch(2)
    context = {"products": [], "facets": [], "result_count": 0, "facets_key": "k", "facets_ttl": 1}

    without = _render_with_request("catalog/product_list.html", context)
    with_recommended = _render_with_request(
        "catalog/product_list.html", {**context, "recommended_products": recommended}
    )

    assert "Recommended for you" not in without
    assert "Recommended for you" in with_recommended
    for item in recommended:
        assert f'href="/products/{item.pk}/"' in with_recommended


def test_a_product_without_a_name_is_shown_by_colour_and_type(client):
    """Some dataset rows have NA as their name; shoppers still see something meaningful."""
    product = ProductFactory(name="", base_colour="Navy Blue", article_type="Shirts")

    listing = client.get(LIST_URL).content.decode()
    page = client.get(product.get_absolute_url()).content.decode()

    assert '<h3 class="product-card__name">Navy Blue Shirts</h3>' in listing
    assert '<h1 class="product__name">Navy Blue Shirts</h1>' in page
