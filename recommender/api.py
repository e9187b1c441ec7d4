"""Visual search over the API: similar products, search by photo, recommendations."""
from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from catalog.importing.images import photo_upload_limit_exceeded
from catalog.models import Product
from catalog.serializers import ProductSerializer
from shop.services import cart_lines, get_cart

from . import services

FILTER_PARAMETERS = [
    OpenApiParameter("gender", OpenApiTypes.STR, description="Only products for this gender, e.g. Women."),
    OpenApiParameter("masterCategory", OpenApiTypes.STR, description="Only this category, e.g. Footwear."),
]
K_PARAMETER = OpenApiParameter(
    "k", OpenApiTypes.INT, description=f"How many products (1 to {services.MAX_RESULTS}, default 5)."
)
RESULTS = inline_serializer("ProductResults", {"results": ProductSerializer(many=True)})


class SearchOptions(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=services.MAX_RESULTS, default=settings.SIMILAR_PRODUCTS_COUNT)
    gender = serializers.CharField(required=False, allow_blank=True, max_length=20)
    masterCategory = serializers.CharField(required=False, allow_blank=True, max_length=50)

    def filters(self):
        return {key: self.validated_data[key] for key in ("gender", "masterCategory") if self.validated_data.get(key)}


class PhotoSearchInput(SearchOptions):
    image = serializers.FileField(help_text="A JPEG, PNG or WebP photo.")

    def validate_image(self, image):
        limit = photo_upload_limit_exceeded(image)
        if limit:
            raise ValidationError(f"The image is larger than {limit}.")
        return image


def _results(request, products):
    return Response({"results": ProductSerializer(products, many=True, context={"request": request}).data})


def _options(serializer_class, data):
    options = serializer_class(data=data)
    options.is_valid(raise_exception=True)
    return options


class SimilarProductsAPI(APIView):
    """The products that look most like this one (never itself; active and in stock)."""

    @extend_schema(parameters=[K_PARAMETER, *FILTER_PARAMETERS], responses=RESULTS)
    def get(self, request, pk):
        product = get_object_or_404(Product.objects.visible(), pk=pk)
        options = _options(SearchOptions, request.query_params)
        similar = services.similar_products(product, k=options.validated_data["k"], filters=options.filters())
        return _results(request, similar)


class PhotoSearchAPI(APIView):
    """Search the catalogue with a photo (multipart field ``image``)."""

    parser_classes = [MultiPartParser, FormParser]
    # A search changes no state and reads no account: no session, so no CSRF token needed.
    authentication_classes = []
    # Each search runs the CNN; the rate is settings.REST_FRAMEWORK's "photo_search".
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "photo_search"

    @extend_schema(request=PhotoSearchInput, responses=RESULTS)
    def post(self, request):
        from .embedding import InvalidImage

        options = _options(PhotoSearchInput, request.data)
        try:
            found = services.search_by_photo(
                options.validated_data["image"].read(), k=options.validated_data["k"], filters=options.filters()
            )
        except InvalidImage as exc:
            raise ValidationError({"image": [str(exc)]})
        return _results(request, found)


class RecommendationsAPI(APIView):
    """Recommended for you: from what you viewed and put in your cart."""

    @extend_schema(parameters=[K_PARAMETER], responses=RESULTS)
    def get(self, request):
        options = _options(SearchOptions, request.query_params)
        in_cart = [line.product_id for line in cart_lines(get_cart(request))]
        found = services.recommended_for(request, cart_product_ids=in_cart, k=options.validated_data["k"])
        return _results(request, found)
