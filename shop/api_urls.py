from django.urls import path

from . import api

urlpatterns = [
    path("cart/", api.CartAPI.as_view(), name="api-cart"),
    path("cart/items/", api.CartItemsAPI.as_view(), name="api-cart-items"),
    path("cart/items/<int:product_id>/", api.CartItemAPI.as_view(), name="api-cart-item"),
    path("orders/", api.OrdersAPI.as_view(), name="api-order-list"),
    path("orders/<str:number>/", api.OrderDetailAPI.as_view(), name="api-order-detail"),
]
