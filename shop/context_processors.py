from functools import cache

from .services import cart_count, get_cart


def cart_summary(request):
    """Number of pieces in the cart, for the header. Looked up lazily, once per page."""
    if not hasattr(request, "session"):
        return {}

    @cache
    def count():
        return cart_count(get_cart(request))

    return {"cart_count": count}
