from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from catalog import media
from config import health

urlpatterns = [
    path("health/live/", health.live, name="health-live"),
    path("health/ready/", health.ReadinessView.as_view(), name="health-ready"),
    path("admin/", admin.site.urls),
    path("accounts/", include("shop.account_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("config.api_urls")),
    path("cart/", include("shop.urls")),
    path("visual/", include("recommender.urls")),
    path("", include("catalog.urls")),
]

# JSON for /api/ addresses, the storefront's 500 page elsewhere.
handler500 = "config.api.server_error"

if settings.STORAGES["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage":
    urlpatterns.insert(0, path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", media.serve, name="media"))
