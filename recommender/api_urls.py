"""API routes of visual search: similar products, search by photo, recommendations."""

from django.urls import path

from . import api

urlpatterns = [
    path("products/<int:pk>/similar/", api.SimilarProductsAPI.as_view(), name="api-product-similar"),
    path("search/image", api.PhotoSearchAPI.as_view(), name="api-search-image"),
    path("recommendations/", api.RecommendationsAPI.as_view(), name="api-recommendations"),
]
