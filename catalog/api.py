"""Products API: the storefront's list filters and search, read by anyone, written by staff."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.permissions import SAFE_METHODS, BasePermission

from config.api import error_responses

from .filters import ProductFilter
from .models import Product
from .serializers import ProductSerializer

# Reading needs no login (the schema otherwise lists only the session cookie).
ANYONE = [{"cookieAuth": []}, {}]


class IsStaffOrReadOnly(BasePermission):
    """Anyone may read; creating and changing products follows Django's model permissions
    (catalog.add_product, catalog.change_product), held by staff only."""

    message = "Only staff can change the catalogue."
    needed = {
        "POST": "catalog.add_product",
        "PUT": "catalog.change_product",
        "PATCH": "catalog.change_product",
    }

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        permission = self.needed.get(request.method)
        return bool(user and user.is_staff and permission and user.has_perm(permission))


class ProductAPIMixin:
    serializer_class = ProductSerializer
    permission_classes = [IsStaffOrReadOnly]


@extend_schema_view(
    get=extend_schema(
        summary="List products",
        # 400: a filter value the form refuses; 404: a page past the last.
        responses={200: ProductSerializer(many=True), **error_responses(400, 404)},
        auth=ANYONE,
    ),
    post=extend_schema(
        summary="Create a product (staff)",
        description="Multipart with an `image` file to give it a photo (JPEG, PNG or WebP).",
        responses={201: ProductSerializer, **error_responses(400, 403, 413)},
    ),
)
class ProductListAPI(ProductAPIMixin, generics.ListCreateAPIView):
    """Active products, filtered and searched like the storefront list page."""

    queryset = Product.objects.visible()
    filter_backends = [DjangoFilterBackend]
    filterset_class = ProductFilter


@extend_schema_view(
    get=extend_schema(
        summary="Product detail", responses={200: ProductSerializer, **error_responses(404)}, auth=ANYONE
    ),
    patch=extend_schema(
        summary="Change a product (staff)",
        description="Send only the fields to change; a new `image` replaces the photo.",
        responses={200: ProductSerializer, **error_responses(400, 403, 404, 413)},
    ),
)
class ProductDetailAPI(ProductAPIMixin, generics.RetrieveUpdateAPIView):
    """One active product."""

    http_method_names = ["get", "patch", "head", "options"]
    queryset = Product.objects.visible()
