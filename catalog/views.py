"""Storefront catalogue pages: the filterable product list and the product page."""

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from recommender.recommendations import recommended_for, record_view
from recommender.similar import similar_products, similar_products_key
from shop.services import cart_lines, get_cart

from .facets import COUNTS_TTL, catalogue_version, summarise
from .filters import FACET_LABELS, FACETS, ProductFilter
from .models import Product

# The parts of pages every visitor sees alike (a catalogue page's filters and cards, a
# product page), rendered once and kept this long: a change to a product (admin, API,
# import, staff stock) or a checkout that changes what shoppers see of one (a sell-out,
# "Only N left") starts a new catalogue version, and with it new keys.
SHARED_TTL = 60
# Stands for the visitor's CSRF token in shared HTML; each page puts its own token in.
CSRF_PLACEHOLDER = "csrf-token-of-this-visitor"


def _for_this_visitor(request, html):
    """Shared HTML with the visitor's own CSRF token put in."""
    return mark_safe(html.replace(CSRF_PLACEHOLDER, get_token(request)))  # noqa: S308 (our own HTML)


def _address_key(request):
    return hashlib.sha256(request.get_full_path().encode()).hexdigest()


def _without(params, *names):
    """The query string of ``params`` without ``names`` (and without the page number)."""
    remaining = params.copy()
    for name in (*names, "page"):
        remaining.pop(name, None)
    return remaining.urlencode()


def product_list(request):
    """The catalogue: facet filters with counts, name search and pagination.

    Its filters, results and pages are rendered once per catalogue version and address
    for every visitor (a hit runs no query and skips the filters, counts and paging); only
    the visitor's CSRF token and "Recommended for you" are theirs."""
    key = f"catalog:list:{catalogue_version()}:{_address_key(request)}"
    shared = cache.get_or_set(key, lambda: _catalogue(request), SHARED_TTL)
    return render(
        request,
        "catalog/product_list.html",
        {
            "catalogue": _for_this_visitor(request, shared["html"]),
            "search": shared["search"],
            # On the home page only, not on filtered or later pages.
            "recommended_products": _recommended(request) if shared["home"] else [],
        },
    )


def _catalogue(request):
    """The shared part of a catalogue page: its HTML (with a stand-in for the CSRF token),
    the name searched for and whether it is the home page."""
    filters = ProductFilter(request.GET, queryset=Product.objects.visible())
    products = filters.qs
    chosen = filters.chosen()
    summary = summarise(products, chosen)
    paginator = Paginator(products, settings.CATALOG_PAGE_SIZE)
    paginator.count = summary.total  # counted once per catalogue version, not per request
    page = paginator.get_page(request.GET.get("page"))
    facets = [
        {
            "param": param,
            "label": FACET_LABELS[param],
            "chosen": chosen.get(param, ""),
            "options": summary.counts[param],
        }
        for param in FACETS
    ]
    removable = [
        {
            "label": filters.filters[param].label,
            "value": value,
            "query": _without(request.GET, param),
        }
        for param, value in chosen.items()
    ]
    search = chosen.get("q", "")
    html = render_to_string(
        "catalog/_catalogue.html",
        {
            "page": page,
            "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
            "products": page.object_list,
            "result_count": page.paginator.count,
            "facets": facets,
            "facets_key": summary.key,
            "facets_ttl": COUNTS_TTL,
            "active_filters": removable,
            "search": search,
            "csrf_token": CSRF_PLACEHOLDER,
        },
        request=request,
    )
    return {"html": html, "search": search, "home": not chosen and page.number == 1}


def _recommended(request):
    in_cart = [line.product_id for line in cart_lines(get_cart(request))]
    return recommended_for(request, cart_product_ids=in_cart)


def product_detail(request, pk):
    """One product with all its attributes and similar items; inactive products do not
    exist for shoppers.

    The page below the header is rendered once per catalogue version (see SHARED_TTL),
    index build, vectors stored since and address, for every visitor: a hit
    runs no query. Not cached while searches are exact (no build to key it on)."""
    key = similar_products_key(pk)
    if key:
        shared = cache.get_or_set(
            f"catalog:product:{key}:{_address_key(request)}", lambda: _product_page(request, pk), SHARED_TTL
        )
    else:
        shared = _product_page(request, pk)
    response = render(
        request,
        "catalog/product_detail.html",
        {"title": shared["title"], "product_page": _for_this_visitor(request, shared["html"])},
    )
    record_view(request, response, pk)
    return response


def _product_page(request, pk):
    """The shared part of a product page: its title and HTML (with a stand-in for the
    CSRF token). Raises Http404 for a product shoppers cannot see."""
    product = get_object_or_404(Product.objects.visible(), pk=pk)
    html = render_to_string(
        "catalog/_product.html",
        {"product": product, "similar": similar_products(product), "csrf_token": CSRF_PLACEHOLDER},
        request=request,
    )
    return {"title": product.display_name, "html": html}
