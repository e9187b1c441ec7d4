"""Cart and checkout: the one implementation that views, the API and the admin call.

A visitor's cart is found through the id stored in their session (never through anything
the browser sends), a shopper's through their account. At login the visitor's cart is
merged into the shopper's open cart.
"""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet, Sum
from django.http import HttpRequest

from catalog.models import Product
from catalog.stock import pieces_sold

from .models import Cart, CartItem, Order, OrderItem

SESSION_CART_KEY = "cart_id"

# Product ids and quantities arrive as form or URL strings; the services validate them.
ProductId = int | str | None
Quantity = int | str | None
AnyUser = AbstractBaseUser | AnonymousUser


class CartError(ValidationError):
    """A cart change that cannot be made; the message is meant for the shopper."""


class CheckoutError(ValidationError):
    """An order that cannot be placed; the message is meant for the shopper."""


# What the shopper reads when the database fails mid-checkout (everything is rolled back).
CHECKOUT_UNAVAILABLE = "Your order could not be placed just now; nothing was ordered and your cart is unchanged. Please try again."


@dataclass
class CartChange:
    """What a cart change did, with a message for the shopper."""

    product: Product
    quantity: int
    message: str
    level: str = "success"


def _open_user_cart(user, create):
    while True:
        cart = Cart.objects.filter(user=user, status=Cart.Status.OPEN).first()
        if cart is not None or not create:
            return cart
        try:
            with transaction.atomic():
                return Cart.objects.create(user=user)
        except IntegrityError:  # a concurrent request created it first: take that one
            continue


def get_cart(request: HttpRequest, *, create: bool = False) -> Cart | None:
    """The open cart of the current shopper or visitor, or None when there is none yet.

    With ``create=True`` a cart is created (and, for a visitor, its id kept in the session).
    """
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return _open_user_cart(user, create)
    cart_id = request.session.get(SESSION_CART_KEY)
    cart = None
    if cart_id:
        cart = Cart.objects.filter(pk=cart_id, user__isnull=True, status=Cart.Status.OPEN).first()
    if cart is None and create:
        if request.session.session_key is None:
            request.session.save()
        cart = Cart.objects.create(session_key=request.session.session_key)
        request.session[SESSION_CART_KEY] = cart.pk
    return cart


def cart_lines(cart: Cart | None) -> list[CartItem]:
    """The cart's items with their products, in one query."""
    if cart is None:
        return []
    return list(cart.items.select_related("product"))


def cart_totals(lines: Sequence[CartItem]) -> tuple[int, Decimal]:
    """Number of pieces and total price of a list of cart lines."""
    count = sum(line.quantity for line in lines)
    total = sum((line.line_total for line in lines), Decimal("0.00"))
    return count, total


def cart_count(cart: Cart | None) -> int:
    """Number of pieces in the cart, counted by the database."""
    if cart is None:
        return 0
    return cart.items.aggregate(n=Sum("quantity"))["n"] or 0


def _bounded_quantity(product, wanted):
    """Clamp a wanted quantity to what can be sold; returns (quantity, message or None)."""
    available = product.availability
    limit = available.max_quantity
    if wanted > limit:
        if not available.is_buyable:
            return 0, f"Sorry, {product.display_name} is out of stock."
        return limit, f"Only {limit} of {product.display_name} can be ordered; quantity set to {limit}."
    return wanted, None


def _lock_cart(cart):
    # Serialises concurrent updates of one cart (PostgreSQL row lock; SQLite's
    # write lock does the same through IMMEDIATE transactions). A cart checked out or
    # merged meanwhile (e.g. in another tab) takes no more changes: they would be lost.
    locked = Cart.objects.select_for_update().filter(pk=cart.pk, status=Cart.Status.OPEN).first()
    if locked is None:
        raise CartError("Your cart was checked out or replaced in the meantime; please try again.")
    return locked


def _validated_quantity(quantity):
    try:
        quantity = int(quantity)
    except (TypeError, ValueError):
        raise CartError("Quantity must be a whole number.") from None
    if quantity < 0:
        raise CartError("Quantity cannot be negative.")
    return quantity


def _buyable_product(product_id):
    try:
        product = Product.objects.get(pk=product_id)
    except (Product.DoesNotExist, ValueError, TypeError):
        raise CartError("This product does not exist.") from None
    if not product.is_active:
        raise CartError(f"{product.display_name} is no longer sold.")
    return product


@transaction.atomic
def add_to_cart(cart: Cart, product_id: ProductId, quantity: Quantity = 1) -> CartChange:
    """Add ``quantity`` pieces of a product, bounded by its stock."""
    quantity = _validated_quantity(quantity)
    if quantity < 1:
        raise CartError("Quantity must be at least 1.")
    _lock_cart(cart)
    product = _buyable_product(product_id)
    item = CartItem.objects.filter(cart=cart, product=product).first()
    current = item.quantity if item else 0
    new_quantity, warning = _bounded_quantity(product, current + quantity)
    if new_quantity == 0:
        raise CartError(warning)
    if item:
        item.quantity = new_quantity
        item.save(update_fields=["quantity"])
    else:
        CartItem.objects.create(cart=cart, product=product, quantity=new_quantity)
    cart.save(update_fields=["updated_at"])
    if warning:
        return CartChange(product, new_quantity, warning, "warning")
    return CartChange(product, new_quantity, f"Added {product.display_name} to your cart.")


@transaction.atomic
def set_quantity(cart: Cart, product_id: ProductId, quantity: Quantity) -> CartChange:
    """Set a line's quantity; 0 removes the line."""
    quantity = _validated_quantity(quantity)
    _lock_cart(cart)
    try:
        item = CartItem.objects.select_related("product").filter(cart=cart, product_id=product_id).first()
    except (ValueError, TypeError):  # not a product id at all
        item = None
    if item is None:
        raise CartError("This product is not in your cart.")
    product = item.product
    if quantity == 0:
        item.delete()
        return CartChange(product, 0, f"Removed {product.display_name} from your cart.")
    new_quantity, warning = _bounded_quantity(product, quantity)
    if new_quantity == 0:
        item.delete()
        return CartChange(product, 0, warning, "warning")
    item.quantity = new_quantity
    item.save(update_fields=["quantity"])
    cart.save(update_fields=["updated_at"])
    if warning:
        return CartChange(product, new_quantity, warning, "warning")
    return CartChange(product, new_quantity, f"Updated {product.display_name} to {new_quantity}.")


def remove_from_cart(cart: Cart, product_id: ProductId) -> CartChange:
    """Remove a product from the cart."""
    return set_quantity(cart, product_id, 0)


def _locked_open_user_cart(user):
    """The user's open cart (created when there is none), locked until the transaction ends."""
    while True:
        cart = _open_user_cart(user, create=True)
        locked = Cart.objects.select_for_update().filter(pk=cart.pk, status=Cart.Status.OPEN).first()
        if locked is not None:
            return locked
        # Checked out between finding and locking it: the next open cart takes the lines.


@transaction.atomic
def merge_session_cart(request: HttpRequest, user: AbstractBaseUser) -> Cart | None:
    """Fold the visitor's session cart into the user's open cart (called at login).

    Both carts stay locked until the merge commits (the visitor's first, then the user's,
    so two logins cannot deadlock): a concurrent checkout of the user's cart either waits
    and orders the merged lines with their stock, or has finished and the lines go to a
    new open cart; a second login with the same session finds its cart already merged, and
    one with another session adds its lines after this one.
    """
    cart_id = request.session.pop(SESSION_CART_KEY, None)
    if not cart_id:
        return None
    visitor_cart = (
        Cart.objects.select_for_update()
        .filter(pk=cart_id, user__isnull=True, status=Cart.Status.OPEN)
        .first()
    )
    if visitor_cart is None:
        return None
    user_cart = _locked_open_user_cart(user)
    existing = {item.product_id: item for item in user_cart.items.all()}
    for item in visitor_cart.items.select_related("product"):
        line = existing.get(item.product_id)
        quantity, _ = _bounded_quantity(item.product, item.quantity + (line.quantity if line else 0))
        if quantity == 0:
            continue
        if line:
            line.quantity = quantity
            line.save(update_fields=["quantity"])
        else:
            CartItem.objects.create(cart=user_cart, product=item.product, quantity=quantity)
    visitor_cart.status = Cart.Status.MERGED
    visitor_cart.save(update_fields=["status", "updated_at"])
    user_cart.save(update_fields=["updated_at"])
    return user_cart


def _order_number():
    return secrets.token_hex(5).upper()


@dataclass
class ShippingDetails:
    """Where an order goes, as the shopper gave it at checkout."""

    full_name: str
    email: str
    address: str
    city: str
    postal_code: str
    country: str


@transaction.atomic
def place_order(cart: Cart | None, shipping: ShippingDetails, *, user: AnyUser | None = None) -> Order:
    """Turn the cart into an order, taking the pieces out of stock.

    Stock is decremented with conditional UPDATEs (``stock >= quantity``) inside one
    transaction, so two concurrent checkouts can never sell the same last piece: the
    second one fails with a clear message and nothing of it is written.

    Payment: orders are created with status ``placed``. A payment gateway would be called
    here, after the stock is reserved and before the transaction commits; on a refusal it
    raises ``CheckoutError`` and the whole order is rolled back.
    """
    if cart is None:
        raise CheckoutError("Your cart is empty.")
    locked = Cart.objects.select_for_update().filter(pk=cart.pk, status=Cart.Status.OPEN).first()
    if locked is None:
        raise CheckoutError("This cart has already been checked out.")
    lines = list(locked.items.select_related("product").order_by("product_id"))
    if not lines:
        raise CheckoutError("Your cart is empty.")
    short = []
    for line in lines:
        if not line.product.is_active:
            short.append(f"{line.product.display_name} is no longer sold")
            continue
        taken = Product.objects.filter(pk=line.product_id, stock__gte=line.quantity).update(
            stock=F("stock") - line.quantity
        )
        if not taken:
            short.append(f"not enough {line.product.display_name} in stock")
    if short:
        transaction.set_rollback(True)
        raise CheckoutError("Sorry, " + "; ".join(short) + ". Please update your cart.")
    pieces_sold(line.product_id for line in lines)
    order = Order.objects.create(
        number=_order_number(),
        user=user if user is not None and user.is_authenticated else None,
        full_name=shipping.full_name,
        email=shipping.email,
        address=shipping.address,
        city=shipping.city,
        postal_code=shipping.postal_code,
        country=shipping.country,
        total=sum((line.line_total for line in lines), Decimal("0.00")),
    )
    OrderItem.objects.bulk_create(
        OrderItem(
            order=order,
            product=line.product,
            product_name=line.product.display_name,
            unit_price=line.product.price,
            quantity=line.quantity,
        )
        for line in lines
    )
    locked.status = Cart.Status.ORDERED
    locked.save(update_fields=["status", "updated_at"])
    return order


def orders_for(user: AnyUser) -> QuerySet[Order]:
    """Orders a user may see: only their own."""
    if not user.is_authenticated:
        return Order.objects.none()
    return Order.objects.filter(user=user).prefetch_related("items")
