"""Products API: the storefront's list filters and search, read by anyone, written by staff."""
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.permissions import SAFE_METHODS, BasePermission

from config.api import ErrorSerializer

from .filters import FACETS, MAX_SEARCH_LENGTH, filter_products
from .models import Product
from .serializers import ProductSerializer

FILTER_PARAMETERS = [
    OpenApiParameter(param, str, description=f"Only products whose {param} is exactly this value.")
    for param in FACETS
] + [
    OpenApiParameter(
        "q",
        str,
        description=f"Name search: every word must appear in the name (first {MAX_SEARCH_LENGTH} chars).",
    )
]

# Reading needs no login (the schema otherwise lists only the session cookie).
ANYONE = [{"cookieAuth": []}, {}]


class IsStaffOrReadOnly(BasePermission):
    """Anyone may read; only staff may create or change."""

    message = "Only staff can change the catalogue."

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or bool(request.user and request.user.is_staff)


class ProductAPIMixin:
    serializer_class = ProductSerializer
    permission_classes = [IsStaffOrReadOnly]


@extend_schema_view(
    get=extend_schema(summary="List products", parameters=FILTER_PARAMETERS, auth=ANYONE),
    post=extend_schema(
        summary="Create a product (staff)",
        description="Multipart with an `image` file to give it a photo (JPEG, PNG or WebP).",
        responses={201: ProductSerializer, 400: ErrorSerializer, 403: ErrorSerializer},
    ),
)
class ProductListAPI(ProductAPIMixin, generics.ListCreateAPIView):
    """Active products, filtered and searched like the storefront list page."""

    def get_queryset(self):
        return filter_products(self.request.query_params)


@extend_schema_view(
    get=extend_schema(
        summary="Product detail", responses={200: ProductSerializer, 404: ErrorSerializer}, auth=ANYONE
    ),
    patch=extend_schema(
        summary="Change a product (staff)",
        description="Send only the fields to change; a new `image` replaces the photo.",
        responses={200: ProductSerializer, 400: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
    ),
)
class ProductDetailAPI(ProductAPIMixin, generics.RetrieveUpdateAPIView):
    """One active product."""

    http_method_names = ["get", "patch", "head", "options"]
    queryset = Product.objects.visible()
