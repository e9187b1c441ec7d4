from django.urls import path

from . import views

app_name = "shop"
urlpatterns = [
    path("", views.cart_detail, name="cart"),
    path("add/", views.add, name="add"),
    path("update/", views.update, name="update"),
    path("remove/", views.remove, name="remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.order_history, name="order_history"),
    path("orders/<str:number>/", views.order_detail, name="order_detail"),
    path("orders/<str:number>/confirmation/", views.order_confirmation, name="order_confirmation"),
]
