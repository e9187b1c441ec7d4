"""Read-only questions about what the shop sold."""

from collections.abc import Iterable

from django.db.models import Sum

from .models import Order, OrderItem


def best_selling_product_ids(*, limit: int, exclude: Iterable[int] = ()) -> list[int]:
    """Ids of the products sold most (pieces in orders that were not cancelled), best first."""
    return list(
        OrderItem.objects.filter(product__isnull=False)
        .exclude(order__status=Order.Status.CANCELLED)
        .exclude(product_id__in=list(exclude))
        .values("product_id")
        .annotate(sold=Sum("quantity"))
        .order_by("-sold", "product_id")
        .values_list("product_id", flat=True)[:limit]
    )
