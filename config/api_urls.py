"""All REST endpoints under /api/, one router so the schema lists them together."""
from django.urls import include, path

urlpatterns = [
    path("", include("catalog.api_urls")),
    path("", include("shop.api_urls")),
    path("", include("recommender.api_urls")),
]
