from .services import cart_count, get_cart


def cart_summary(request):
    """Number of pieces in the cart, for the header. Looked up lazily, once per page."""
    if not hasattr(request, "session"):
        return {}
    cache = {}

    def count():
        if "n" not in cache:
            cache["n"] = cart_count(get_cart(request))
        return cache["n"]

    return {"cart_count": count}
