"""One log line per request: method, path, status, duration, client address, user and
request id.

The path is logged without its query string (searches and filters may carry personal
data). The client address is the one the rate limits key on (DRF's reading of
X-Forwarded-For with ``TRUSTED_PROXIES``, see config/throttling.py). The request id comes
from the proxy's X-Request-ID when it is a plain token, else a new one, and is sent back
in the response's X-Request-ID. With LOG_FORMAT=json every field is a JSON key too.
"""

import logging
import re
import time
import uuid

from django.utils.encoding import escape_uri_path
from django.utils.functional import LazyObject, empty
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy's request id looks like (UUIDs, nginx's $request_id); anything else could
# forge log lines, so it is replaced.
PLAIN_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,128}")


def request_id_of(request) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    return incoming if PLAIN_TOKEN.fullmatch(incoming) else uuid.uuid4().hex


def client_address(request) -> str:
    """The client's address as the rate limits see it."""
    return BaseThrottle().get_ident(request) or "-"


def user_id_of(request):
    """The signed-in user's id, only when the request already loaded the user: logging
    never costs a session or user query (health probes stay database-free)."""
    user = getattr(request, "user", None)
    if isinstance(user, LazyObject):
        user = user._wrapped
        if user is empty:
            return None
    return user.pk if user is not None and user.is_authenticated else None


class RequestLogMiddleware:
    """First in MIDDLEWARE, so that every answer, a 413 or a redirect too, is timed."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request.request_id = request_id_of(request)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id
        fields = {
            "method": request.method,
            "path": escape_uri_path(request.path),
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "client": client_address(request),
            "user_id": user_id_of(request),
            "request_id": request.request_id,
        }
        logger.info(
            "%(method)s %(path)s %(status)s %(duration_ms).1fms client=%(client)s user=%(user)s request_id=%(request_id)s",
            dict(fields, user=fields["user_id"] or "-"),
            extra=fields,
        )
        return response
