"""Cart and orders API: the same services as the storefront's cart and checkout pages.

Carts live in the session (visitors) or the account (shoppers), so every change needs a
CSRF token; GET /api/cart/ hands one out as the ``csrftoken`` cookie.
"""

import logging

from django.db import DatabaseError
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.serializers import MAX_PRODUCT_ID
from config.api import error_responses

from .serializers import (
    CartAddSerializer,
    CartChangeSerializer,
    CartQuantitySerializer,
    CartSerializer,
    OrderSerializer,
    ShippingSerializer,
)
from .services import (
    CHECKOUT_UNAVAILABLE,
    CheckoutError,
    ShippingDetails,
    add_to_cart,
    cart_lines,
    cart_totals,
    get_cart,
    orders_for,
    place_order,
    remove_from_cart,
    set_quantity,
)

# 403: no CSRF token; 404 (product in the path): an address that is not a product id.
logger = logging.getLogger(__name__)
CART_ERRORS = error_responses(400, 403)
CART_ITEM_ERRORS = error_responses(400, 403, 404)


class CheckoutConflict(APIException):
    """The cart cannot be ordered as it is (empty, or stock ran out)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The order could not be placed."
    default_code = "checkout_failed"


class CheckoutUnavailable(APIException):
    """The database failed mid-checkout; nothing was ordered, the cart is unchanged."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = CHECKOUT_UNAVAILABLE
    default_code = "checkout_unavailable"


def cart_response(request, cart, change=None):
    """The cart as JSON, with the change's message when there was one."""
    lines = cart_lines(cart)
    count, total = cart_totals(lines)
    data = {"items": lines, "count": count, "total": total}
    serializer_class = CartSerializer
    if change is not None:
        data.update(message=change.message, level=change.level)
        serializer_class = CartChangeSerializer
    return Response(serializer_class(data, context={"request": request}).data)


def cart_product_id(product_id):
    """The product id in the address; past the id column's range it is None, which is in no
    cart (SQLite could not even compare such a number)."""
    return product_id if product_id <= MAX_PRODUCT_ID else None


class CartAPI(APIView):
    @extend_schema(summary="The current cart", responses=CartSerializer)
    def get(self, request):
        """The visitor's session cart or the shopper's cart (empty when there is none yet)."""
        # Visitors need the CSRF cookie before their first change.
        get_token(request)
        return cart_response(request, get_cart(request))


class CartItemsAPI(APIView):
    @extend_schema(
        summary="Add a product to the cart",
        request=CartAddSerializer,
        responses={200: CartChangeSerializer, **CART_ERRORS},
    )
    def post(self, request):
        """Add pieces of a product; the quantity is limited by the stock."""
        wanted = CartAddSerializer(data=request.data)
        wanted.is_valid(raise_exception=True)
        cart = get_cart(request, create=True)
        change = add_to_cart(cart, **wanted.validated_data)
        return cart_response(request, cart, change)


class CartItemAPI(APIView):
    @extend_schema(
        summary="Change a quantity in the cart",
        request=CartQuantitySerializer,
        responses={200: CartChangeSerializer, **CART_ITEM_ERRORS},
    )
    def patch(self, request, product_id):
        """Set the quantity of a product in the cart; 0 removes it."""
        wanted = CartQuantitySerializer(data=request.data)
        wanted.is_valid(raise_exception=True)
        cart = get_cart(request, create=True)
        change = set_quantity(cart, cart_product_id(product_id), wanted.validated_data["quantity"])
        return cart_response(request, cart, change)

    @extend_schema(
        summary="Remove a product from the cart", responses={200: CartChangeSerializer, **CART_ITEM_ERRORS}
    )
    def delete(self, request, product_id):
        """Remove a product from the cart."""
        cart = get_cart(request, create=True)
        change = remove_from_cart(cart, cart_product_id(product_id))
        return cart_response(request, cart, change)


@extend_schema_view(
    get=extend_schema(
        summary="Your orders",
        # 404: a page past the last.
        responses={200: OrderSerializer(many=True), **error_responses(403, 404)},
    ),
)
class OrdersAPI(generics.ListAPIView):
    """Orders of the logged-in shopper, newest first; POST checks out the current cart."""

    serializer_class = OrderSerializer

    def get_permissions(self):
        # Visitors may check out their session cart; looking orders up needs an account.
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_queryset(self):
        return orders_for(self.request.user)

    @extend_schema(
        summary="Place an order from the cart",
        request=ShippingSerializer,
        responses={201: OrderSerializer, **error_responses(400, 403, 409, 503)},
    )
    def post(self, request):
        """Order everything in the cart, shipped to the given address; stock is taken at once."""
        shipping = ShippingSerializer(data=request.data)
        shipping.is_valid(raise_exception=True)
        try:
            order = place_order(
                get_cart(request), ShippingDetails(**shipping.validated_data), user=request.user
            )
        except CheckoutError as error:
            raise CheckoutConflict(" ".join(error.messages)) from error
        except DatabaseError as error:
            logger.exception("Checkout failed on a database error")
            raise CheckoutUnavailable() from error
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(
        summary="One of your orders",
        responses={200: OrderSerializer, **error_responses(403, 404)},
    ),
)
class OrderDetailAPI(generics.RetrieveAPIView):
    """One order of the logged-in shopper; other people's orders do not exist here."""

    permission_classes = [IsAuthenticated]
    serializer_class = OrderSerializer
    lookup_field = "number"

    def get_queryset(self):
        return orders_for(self.request.user)
