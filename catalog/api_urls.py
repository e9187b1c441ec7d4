from django.urls import path

from . import api

urlpatterns = [
    path("products/", api.ProductListAPI.as_view(), name="api-product-list"),
    path("products/<int:pk>/", api.ProductDetailAPI.as_view(), name="api-product-detail"),
]
