"""Visual search over the API: similar products, search by photo, recommendations."""

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.filters import FACET_LABELS
from catalog.importing.images import photo_upload_limit_exceeded
from catalog.models import Product
from catalog.serializers import ProductSerializer
from config.api import error_responses
from config.throttling import PhotoSearchThrottle
from shop.services import cart_lines, get_cart

from .embedding import EmbedderUnavailable, InvalidImage
from .neighbours import MAX_RESULTS, RESULT_FILTERS, result_filters
from .photo_search import PHOTO_SEARCH_STARTING, RETRY_AFTER_SECONDS, crop_from, read_photo, search_with
from .recommendations import recommended_for
from .similar import similar_products, similar_products_key

# Similar products' answers are kept this long: their key changes with the catalogue, the
# build and vectors stored since (recommender.similar.similar_products_key).
SIMILAR_RESULTS_TTL = 60


class PhotoSearchUnavailable(APIException):
    """The model is not ready yet (see recommender.photo_search); try again later."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = PHOTO_SEARCH_STARTING
    default_code = "photo_search_unavailable"
    wait = RETRY_AFTER_SECONDS  # DRF sends it as Retry-After


RESULTS = inline_serializer("ProductResults", {"results": ProductSerializer(many=True)})


class LooksLikeSerializer(serializers.Serializer):
    """What the trained model thinks the photo shows; ``param=value`` refines the results."""

    param = serializers.CharField(help_text="The filter this refines by, e.g. articleType.")
    label = serializers.CharField()
    value = serializers.CharField()
    probability = serializers.FloatField()


class PhotoResultsSerializer(serializers.Serializer):
    results = ProductSerializer(many=True)
    looks_like = LooksLikeSerializer(many=True)


class ResultCount(serializers.Serializer):
    k = serializers.IntegerField(
        min_value=1,
        max_value=MAX_RESULTS,
        default=settings.SIMILAR_PRODUCTS_COUNT,
        help_text=f"How many products (1 to {MAX_RESULTS}, default {settings.SIMILAR_PRODUCTS_COUNT}).",
    )


class SearchOptions(ResultCount):
    """How many results, and the shopper-facing result filters (recommender.neighbours)."""

    def get_fields(self):
        fields = super().get_fields()
        for param in RESULT_FILTERS:
            fields[param] = serializers.CharField(
                required=False,
                allow_blank=True,
                max_length=50,
                help_text=f"Only products whose {FACET_LABELS[param].lower()} is exactly this value.",
            )
        return fields

    def filters(self):
        return result_filters(self.validated_data)


class CropField(serializers.FloatField):
    """One side of the crop box, as a fraction of the photo."""

    def __init__(self, **kwargs):
        super().__init__(required=False, min_value=0, max_value=1, **kwargs)


class PhotoSearchInput(SearchOptions):
    image = serializers.FileField(help_text="A JPEG, PNG or WebP photo.")
    crop_x = CropField(help_text="Left edge of the part to search (0 to 1).")
    crop_y = CropField(help_text="Top edge of the part to search (0 to 1).")
    crop_width = CropField(help_text="Width of the part to search (0 to 1).")
    crop_height = CropField(help_text="Height of the part to search (0 to 1).")

    def validate(self, data):
        try:
            data["crop"] = crop_from(data)
        except ValueError as exc:
            raise ValidationError({"crop": [str(exc)]}) from exc
        return data

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

    @extend_schema(parameters=[SearchOptions], responses={200: RESULTS, **error_responses(400, 404)})
    def get(self, request, pk):
        product = get_object_or_404(Product.objects.visible(), pk=pk)
        options = _options(SearchOptions, request.query_params)
        k, filters = options.validated_data["k"], options.filters()

        def find():
            found = similar_products(product, k=k, filters=filters)
            return list(ProductSerializer(found, many=True, context={"request": request}).data)

        key = similar_products_key(product.pk, k, filters)
        if key:
            # The answer holds absolute URLs: one copy per address the site is reached at.
            site = hashlib.sha256(request.build_absolute_uri("/").encode()).hexdigest()[:16]
            results = cache.get_or_set(f"api:{key}:{site}", find, SIMILAR_RESULTS_TTL)
        else:
            results = find()
        return Response({"results": results})


class PhotoSearchAPI(APIView):
    """Search the catalogue with a photo (multipart field ``image``)."""

    parser_classes = [MultiPartParser, FormParser]
    # A search changes no state and reads no account: no session, so no CSRF token needed.
    authentication_classes = []
    # Each search runs the CNN; the rate is settings.REST_FRAMEWORK's "photo_search".
    throttle_classes = [PhotoSearchThrottle]

    @extend_schema(
        request=PhotoSearchInput,
        # 413: a body over the upload limit; 429: over the photo search rate; 503: the
        # model is not ready yet.
        responses={200: PhotoResultsSerializer, **error_responses(400, 413, 429, 503)},
    )
    def post(self, request):
        options = _options(PhotoSearchInput, request.data)
        data = options.validated_data
        try:
            query = read_photo(data["image"].read(), crop=data["crop"])
        except InvalidImage as exc:
            raise ValidationError({"image": [str(exc)]}) from exc
        except EmbedderUnavailable as exc:
            raise PhotoSearchUnavailable() from exc
        found = search_with(query, k=data["k"], filters=options.filters())
        products = ProductSerializer(found.products, many=True, context={"request": request}).data
        return Response({"results": products, "looks_like": found.looks_like})


class RecommendationsAPI(APIView):
    """Recommended for you: from what you viewed and put in your cart."""

    @extend_schema(parameters=[ResultCount], responses={200: RESULTS, **error_responses(400)})
    def get(self, request):
        options = _options(ResultCount, request.query_params)
        in_cart = [line.product_id for line in cart_lines(get_cart(request))]
        found = recommended_for(request, cart_product_ids=in_cart, k=options.validated_data["k"])
        return _results(request, found)
