"""All REST endpoints under /api/, one router so the schema lists them together."""

from django.urls import include, path, re_path

from .api import not_found

urlpatterns = [
    path("", include("catalog.api_urls")),
    path("", include("shop.api_urls")),
    path("", include("recommender.api_urls")),
    # Unknown addresses under /api/ answer with a JSON 404, not the storefront's HTML page.
    re_path(r"^.*/$", not_found),
]
