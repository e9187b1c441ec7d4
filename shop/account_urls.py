from django.contrib.auth import views as auth_views
from django.urls import path

from config.throttling import rate_limited

from . import views

# Names without a namespace: settings.LOGIN_URL and Django's auth views refer to them so.
urlpatterns = [
    path(
        "login/",
        rate_limited("login")(
            auth_views.LoginView.as_view(
                template_name="registration/login.html", redirect_authenticated_user=True
            )
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
]
