"""API-wide behaviour: every error is JSON with a human-readable ``detail``, session
authentication checks CSRF for visitors too, and lists page the same way."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.template.defaultfilters import filesizeformat
from django.views import defaults
from drf_spectacular.authentication import SessionScheme
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response


def _error_messages(errors, prefix=""):
    """Flatten DRF's nested validation errors into "field: message" strings."""
    if isinstance(errors, dict):
        for name, value in errors.items():
            label = "" if name == "non_field_errors" else f"{prefix}{name}"
            yield from _error_messages(value, f"{label}." if label else prefix)
    elif isinstance(errors, list):
        for value in errors:
            yield from _error_messages(value, prefix)
    else:
        yield f"{prefix[:-1]}: {errors}" if prefix else str(errors)


def exception_handler(exc, context):
    """Turn Django validation errors into 400s and make sure ``detail`` is always set.

    Field errors keep their structure under ``errors``; ``detail`` repeats them as one
    sentence so a client can show it as is. Request bodies Django refuses to read (over
    DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields) answer JSON too, not the HTML 400 page.
    """
    # Imported here: rest_framework.views reads DEFAULT_AUTHENTICATION_CLASSES at import,
    # which names a class of this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DjangoValidationError):
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        limit = filesizeformat(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        message = f"The request data outside files is larger than the {limit} allowed."
        return Response({"detail": message}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, SuspiciousOperation):
        return Response({"detail": "The request could not be read."}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        detail = " ".join(_error_messages(response.data)) or "Invalid input."
        response.data = {"detail": detail, "errors": response.data}
    elif response is not None and isinstance(response.data, list):
        response.data = {"detail": " ".join(str(item) for item in response.data)}
    return response


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (documents the shape in the schema)."""

    detail = serializers.CharField()
    errors = serializers.DictField(required=False, help_text="Messages per field, for invalid input.")


def error_responses(*codes):
    """``extend_schema`` responses for error status codes, each with an ``ErrorSerializer`` body."""
    return {code: ErrorSerializer for code in codes}


class CsrfSessionAuthentication(SessionAuthentication):
    """Session authentication that also checks CSRF for anonymous visitors.

    DRF only checks CSRF once a user is logged in, but visitors have session carts too:
    without this a third-party page could fill or check out a visitor's cart.
    """

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            self.enforce_csrf(request)
        return result


class CsrfSessionScheme(SessionScheme):
    """Documents ``CsrfSessionAuthentication`` in the schema as the session cookie."""

    target_class = "config.api.CsrfSessionAuthentication"


class StorePagination(PageNumberPagination):
    """Page-number pages; clients may ask for up to 100 items per page."""

    page_size_query_param = "page_size"
    max_page_size = 100

    def get_schema_operation_parameters(self, view):
        # Pages count from 1 (a page past the last is a 404); bigger page sizes are cut to the maximum.
        parameters = super().get_schema_operation_parameters(view)
        bounds = {"page": {"minimum": 1}, "page_size": {"minimum": 1, "maximum": self.max_page_size}}
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters


def not_found(request, *args, **kwargs):
    """JSON 404 for any path under /api/ that no endpoint answers."""
    return JsonResponse({"detail": "No API endpoint at this address."}, status=404)


def server_error(request):
    """The 500 answer (handler500): JSON under /api/, the storefront's error page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error: the request could not be completed."}, status=500)
    return defaults.server_error(request)
