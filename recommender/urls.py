"""Page routes of visual search."""

from django.urls import path

from . import views

app_name = "recommender"
urlpatterns = [
    path("search/", views.photo_search, name="photo_search"),
]
