"""Admin for orders (staff follow them up and change their status) and carts (read only)."""

from django.contrib import admin

from config.admin_mixins import ReadOnlyAdminMixin

from .models import Cart, CartItem, Order, OrderItem


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Lines are a record of what happened: shown, never edited in the admin."""

    extra = 0
    can_delete = False
    show_change_link = False


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ("product", "product_name", "unit_price", "quantity", "line_total")
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "created_at", "user", "full_name", "email", "status", "total")
    list_filter = ("status", "created_at")
    list_select_related = ("user",)
    search_fields = ("number", "email", "full_name", "user__username")
    date_hierarchy = "created_at"
    # Only the status moves on after checkout; what was bought and where it goes is fixed.
    readonly_fields = ("number", "user", "created_at", "total", *Order.SHIPPING_FIELDS)
    fieldsets = (
        (None, {"fields": ("number", "status", "user", "created_at", "total")}),
        ("Shipping", {"fields": Order.SHIPPING_FIELDS}),
    )
    inlines = (OrderItemInline,)

    def has_add_permission(self, request):
        # Orders come from checkout, which also takes the pieces out of stock.
        return False


class CartItemInline(ReadOnlyInline):
    model = CartItem
    fields = ("product", "quantity", "added_at")
    readonly_fields = fields


@admin.register(Cart)
class CartAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # A live session key would let whoever reads it take over the visitor's session: never shown.
    list_display = ("id", "user", "visitor", "status", "created_at", "updated_at")
    list_filter = ("status",)
    list_select_related = ("user",)
    search_fields = ("user__username", "user__email")
    readonly_fields = ("user", "visitor", "status", "created_at", "updated_at")
    exclude = ("session_key",)
    inlines = (CartItemInline,)

    @admin.display(description="Visitor")
    def visitor(self, obj):
        return "signed-in shopper" if obj.user_id else ("visitor" if obj.session_key else "-")
