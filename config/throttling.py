"""Rate limits keyed on the real client address, for the API and for plain Django views.

Which address is the client's is decided by ``TRUSTED_PROXIES`` (DRF's ``NUM_PROXIES``):
with 0 the connection's address is used and X-Forwarded-For is ignored, so a client
cannot dodge a limit by sending a new header with every request; behind N proxies the
N-th address from the right of X-Forwarded-For is the client's.
"""

from functools import wraps

from django.shortcuts import render
from rest_framework.throttling import SimpleRateThrottle


class ClientAddressThrottle(SimpleRateThrottle):
    """A rate (settings.REST_FRAMEWORK's DEFAULT_THROTTLE_RATES[scope]) per client address."""

    def __init__(self, scope=None):
        self.scope = scope or self.scope
        super().__init__()

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class PhotoSearchThrottle(ClientAddressThrottle):
    """Each photo search runs the CNN."""

    scope = "photo_search"


def rate_limited(scope, methods=("POST",)):
    """Decorate a Django view: over the scope's rate, ``methods`` get a 429 page."""

    def decorator(view):
        @wraps(view)
        def limited(request, *args, **kwargs):
            if request.method in methods:
                throttle = ClientAddressThrottle(scope)
                if not throttle.allow_request(request, None):
                    wait = throttle.wait()
                    context = {"seconds": int(wait) + 1 if wait else 60}
                    return render(request, "429.html", context, status=429)
            return view(request, *args, **kwargs)

        return limited

    return decorator
