"""Storefront cart, checkout, order and account pages.

Every cart change and every order goes through shop.services, the same functions the
API uses; the views add messages, redirects and the session memory of placed orders.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from config.throttling import rate_limited
from recommender.recommendations import recommended_for

from .forms import ShippingForm, SignupForm
from .models import Cart, Order
from .services import (
    CHECKOUT_UNAVAILABLE,
    CartError,
    CheckoutError,
    add_to_cart,
    cart_count,
    cart_lines,
    cart_totals,
    get_cart,
    orders_for,
    place_order,
    remove_from_cart,
    set_quantity,
)

# Session key: [cart id, order number] of the orders placed in this browser session, so a
# visitor can see their own confirmation and a resubmitted checkout finds its order.
logger = logging.getLogger(__name__)
SESSION_ORDERS_KEY = "placed_orders"
REMEMBERED_ORDERS = 20
ORDERS_PER_PAGE = 20


def _safe_next(request, default):
    """The ``next`` target of the request if it stays on this site, else ``default``."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _wants_json(request):
    # Browsers list text/html first; the progressive-enhancement script asks for JSON.
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def _error_text(error):
    return " ".join(error.messages)


def _cart_change_response(request, cart, change_cart):
    """Apply ``change_cart(cart)`` and answer with JSON or a redirect carrying a message."""
    if cart is None:
        error, change = "Your cart is empty.", None
    else:
        try:
            change, error = change_cart(cart), None
        except CartError as exc:
            change, error = None, _error_text(exc)
    if _wants_json(request):
        if error:
            return JsonResponse(
                {"ok": False, "level": "error", "message": error, "cart_count": cart_count(cart)}, status=400
            )
        return JsonResponse(
            {
                "ok": True,
                "level": change.level,
                "message": change.message,
                "product_id": change.product.pk,
                "quantity": change.quantity,
                "cart_count": cart_count(cart),
            }
        )
    if error:
        messages.error(request, error)
    else:
        level = messages.WARNING if change.level == "warning" else messages.SUCCESS
        messages.add_message(request, level, change.message)
    return redirect(_safe_next(request, reverse("shop:cart")))


@require_POST
def add(request):
    """Add a product to the cart (POST ``product_id``, ``quantity``, optional ``next``)."""
    return _cart_change_response(
        request,
        get_cart(request, create=True),
        lambda cart: add_to_cart(cart, request.POST.get("product_id"), request.POST.get("quantity", 1)),
    )


@require_POST
def update(request):
    """Set the quantity of a cart line (POST ``product_id``, ``quantity``); 0 removes it."""
    return _cart_change_response(
        request,
        get_cart(request),
        lambda cart: set_quantity(cart, request.POST.get("product_id"), request.POST.get("quantity")),
    )


@require_POST
def remove(request):
    """Remove a product from the cart (POST ``product_id``)."""
    return _cart_change_response(
        request, get_cart(request), lambda cart: remove_from_cart(cart, request.POST.get("product_id"))
    )


def _line_problem(line):
    """Why a cart line cannot be checked out as it is, or an empty string."""
    product = line.product
    if not product.is_active:
        return "No longer sold; please remove it."
    available = product.availability
    if not available.is_buyable:
        return f"{available.message}; please remove it."
    if line.quantity > product.stock:
        return f"Only {product.stock} left; please lower the quantity."
    return ""


def _cart_rows(lines):
    return [
        {"line": line, "max_quantity": line.product.availability.max_quantity, "problem": _line_problem(line)}
        for line in lines
    ]


def cart_detail(request):
    """The cart page: lines with quantity forms, totals and the way to checkout."""
    lines = cart_lines(get_cart(request))
    count, total = cart_totals(lines)
    recommended = recommended_for(request, cart_product_ids=[line.product_id for line in lines])
    return render(
        request,
        "shop/cart.html",
        {"rows": _cart_rows(lines), "count": count, "total": total, "recommended_products": recommended},
    )


def _placed_orders(request):
    return request.session.get(SESSION_ORDERS_KEY, [])


def _remember_order(request, cart_id, number):
    placed = [*_placed_orders(request), [cart_id, number]]
    request.session[SESSION_ORDERS_KEY] = placed[-REMEMBERED_ORDERS:]


def _order_placed_from(request, cart_id):
    """The number of the order this session placed from ``cart_id``, if any."""
    for placed_cart, number in _placed_orders(request):
        if placed_cart == cart_id:
            return number
    return None


def _checked_out_by_shopper(request, cart_id):
    """Whether ``cart_id`` is one of this shopper's carts that has become an order."""
    carts = Cart.objects.filter(pk=cart_id, status=Cart.Status.ORDERED)
    if request.user.is_authenticated:
        return carts.filter(user=request.user).exists()
    return carts.filter(user__isnull=True, session_key=request.session.session_key).exists()


def _placed_order_redirect(request, cart_id):
    """When the shopper's cart ``cart_id`` is already an order: where to send them instead."""
    if cart_id is None:
        return None
    number = _order_placed_from(request, cart_id)
    if number:
        messages.info(request, f"Order {number} has already been placed; it was not placed twice.")
        return redirect("shop:order_confirmation", number=number)
    if _checked_out_by_shopper(request, cart_id):
        # Placed from another tab or at the same moment: this session does not know the number.
        messages.info(request, "This cart has already been checked out; your order was placed once.")
        return redirect("shop:order_history" if request.user.is_authenticated else "shop:cart")
    return None


def checkout(request):
    """Shipping details, then the order is placed from the current cart.

    Submitting the same checkout page twice (double click, reload, back button, two tabs)
    places one order and sends the shopper to it.
    """
    cart = get_cart(request)
    if request.method == "POST":
        form = ShippingForm(request.POST)
        if form.is_valid():
            seen_cart = form.cleaned_data["cart"]
            if cart is None or cart.pk != seen_cart:
                placed = _placed_order_redirect(request, seen_cart)
                if placed:
                    return placed
            try:
                order = place_order(cart, form.shipping_details(), user=request.user)
            except CheckoutError as exc:
                placed = _placed_order_redirect(request, cart.pk if cart else None)
                if placed:
                    return placed
                messages.error(request, _error_text(exc))
                return redirect("shop:cart")
            except DatabaseError:
                # Rolled back whole: no order, no stock taken. The form is shown again.
                logger.exception("Checkout failed on a database error")
                messages.error(request, CHECKOUT_UNAVAILABLE)
                return _checkout_page(request, form, cart, status=503)
            _remember_order(request, cart.pk, order.number)
            return redirect("shop:order_confirmation", number=order.number)
    else:
        user = request.user
        initial = {"email": user.email, "full_name": user.get_full_name()} if user.is_authenticated else {}
        form = ShippingForm(initial={**initial, "cart": cart.pk if cart else None})
    return _checkout_page(request, form, cart)


def _checkout_page(request, form, cart, status=200):
    lines = cart_lines(cart)
    if not lines:
        messages.info(request, "Your cart is empty.")
        return redirect("shop:cart")
    count, total = cart_totals(lines)
    return render(
        request,
        "shop/checkout.html",
        {"form": form, "rows": _cart_rows(lines), "count": count, "total": total},
        status=status,
    )


def order_confirmation(request, number):
    """The confirmation of an order placed in this browser session or by this user."""
    order = get_object_or_404(Order.objects.prefetch_related("items"), number=number)
    placed_here = any(placed_number == number for _, placed_number in _placed_orders(request))
    own = request.user.is_authenticated and order.user_id == request.user.pk
    if not (placed_here or own):
        raise Http404("No such order.")
    return render(request, "shop/order_confirmation.html", {"order": order})


@login_required
def order_history(request):
    """The signed-in shopper's orders, newest first."""
    page = Paginator(orders_for(request.user), ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "shop/order_history.html", {"page": page, "orders": page.object_list})


@login_required
def order_detail(request, number):
    """One of the signed-in shopper's orders; other people's orders do not exist here."""
    order = get_object_or_404(orders_for(request.user), number=number)
    return render(request, "shop/order_detail.html", {"order": order})


@rate_limited("signup")
def signup(request):
    """Create an account and sign in with it (the visitor's cart comes along)."""
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        # login() sends user_logged_in, which merges the visitor's cart into the account.
        login(request, user)
        messages.success(request, f"Welcome, {user.get_username()}! Your account is ready.")
        return redirect(_safe_next(request, reverse(settings.LOGIN_REDIRECT_URL)))
    return render(request, "registration/signup.html", {"form": form, "next": _safe_next(request, "")})
