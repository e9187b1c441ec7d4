"""Cart and orders as the API shows them, and the shapes of what clients send."""

from rest_framework import serializers

from catalog.serializers import MAX_PRODUCT_ID, ProductImageField

from .models import Order, OrderItem


class CartLineSerializer(serializers.Serializer):
    """One line of the cart, priced at today's product price."""

    product_id = serializers.IntegerField()
    name = serializers.CharField(source="product.name")
    price = serializers.DecimalField(source="product.price", max_digits=10, decimal_places=2)
    quantity = serializers.IntegerField()
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2)
    image = ProductImageField(source="product.image", read_only=True)


class CartSerializer(serializers.Serializer):
    """The whole cart: its lines, the number of pieces and the total price."""

    items = CartLineSerializer(many=True)
    count = serializers.IntegerField(help_text="Number of pieces in the cart.")
    total = serializers.DecimalField(max_digits=12, decimal_places=2)


class CartChangeSerializer(CartSerializer):
    """The cart after a change, with a message for the shopper."""

    message = serializers.CharField()
    level = serializers.ChoiceField(
        choices=["success", "warning"], help_text="`warning` when the quantity was limited by stock."
    )


class CartAddSerializer(serializers.Serializer):
    product_id = serializers.IntegerField(min_value=1, max_value=MAX_PRODUCT_ID)
    quantity = serializers.IntegerField(default=1, min_value=1)


class CartQuantitySerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=0, help_text="0 removes the product from the cart.")


class ShippingSerializer(serializers.ModelSerializer):
    """Where an order goes; the order is placed from the current cart."""

    class Meta:
        model = Order
        fields = list(Order.SHIPPING_FIELDS)


class OrderLineSerializer(serializers.ModelSerializer):
    """A line as it was bought: name and price are kept from the time of the order."""

    product_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="null when the product has since been deleted."
    )
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)

    class Meta:
        model = OrderItem
        fields = ["product_id", "product_name", "unit_price", "quantity", "line_total"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    items = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "number",
            "status",
            "total",
            "items",
            "created_at",
            *Order.SHIPPING_FIELDS,
        ]
        read_only_fields = fields
