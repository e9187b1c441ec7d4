"""Products as the API shows them: field names follow styles.csv (camelCase)."""

from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .importing import ImageProblem
from .importing.images import photo_upload_limit_exceeded, storable_image
from .models import Product
from .stock import save_staff_edit

# Product ids are a 32-bit integer column.
MAX_PRODUCT_ID = 2_147_483_647


class ProductImageField(serializers.FileField):
    """A product photo: an absolute URL (or null) when read, a checked upload when written.

    Uploads are checked like imported images (content, not name: Pillow must decode them
    within ``IMAGE_MAX_PIXELS``) and limited to ``PHOTO_UPLOAD_MAX_BYTES``; PNG and WebP
    are converted to JPEG. The model stores the file under the product id with its checksum.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("use_url", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        upload = super().to_internal_value(data)
        limit = photo_upload_limit_exceeded(upload)
        if limit:
            raise serializers.ValidationError(f"The image is larger than {limit}.")
        try:
            stored = storable_image(upload.read())
        except ImageProblem as problem:
            raise serializers.ValidationError(
                f"The file cannot be used as a product photo: {problem}."
            ) from None
        return ContentFile(stored, name="upload.jpg")


def _category_field(name):
    """A styles.csv column shown under its camelCase name."""
    max_length = Product._meta.get_field(name).max_length
    return serializers.CharField(source=name, max_length=max_length, required=False, allow_blank=True)


class ProductSerializer(serializers.ModelSerializer):
    """A catalogue product. Staff may create products (with their dataset ``id``) and
    change them; the ``id`` cannot change afterwards."""

    masterCategory = _category_field("master_category")
    subCategory = _category_field("sub_category")
    articleType = _category_field("article_type")
    baseColour = _category_field("base_colour")
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=Decimal("0.00"))
    in_stock = serializers.BooleanField(source="availability.is_buyable", read_only=True)
    image = ProductImageField(required=False)
    url = serializers.SerializerMethodField()
    stock_loaded = serializers.IntegerField(
        write_only=True,
        required=False,
        min_value=0,
        max_value=2_147_483_647,
        help_text="The stock you read before changing it: only your change is applied, so pieces "
        "sold meanwhile stay sold. Without it, `stock` is set as given.",
    )

    class Meta:
        model = Product
        fields = [
            "id",
            "name",
            "gender",
            "masterCategory",
            "subCategory",
            "articleType",
            "baseColour",
            "season",
            "year",
            "usage",
            "price",
            "stock",
            "stock_loaded",
            "in_stock",
            "image",
            "url",
        ]
        # Bounds of the database columns, so out-of-range input is a 400, not a 500.
        extra_kwargs = {
            "id": {"min_value": 1, "max_value": MAX_PRODUCT_ID},
            "stock": {"max_value": 2_147_483_647},
            "year": {"min_value": 1900, "max_value": 2100},
        }

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["id"].read_only = True
        return fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, product):
        url = product.get_absolute_url()
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    def create(self, validated_data):
        validated_data.pop("stock_loaded", None)  # a new product has no stock to keep
        return super().create(validated_data)

    @transaction.atomic
    def update(self, product, validated_data):
        wanted = validated_data.pop("stock", None)
        loaded = validated_data.pop("stock_loaded", None)
        for field, value in validated_data.items():
            setattr(product, field, value)
        save_staff_edit(product, stock_wanted=wanted, stock_loaded=loaded if wanted is not None else None)
        return product
