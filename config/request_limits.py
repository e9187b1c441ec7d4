"""Request bodies over the limit are refused: from their Content-Length before anything is
read (413), and, for a body sent without one, as soon as the upload streams past it.

The limit is the photo upload's (PHOTO_UPLOAD_MAX_BYTES) everywhere except the admin's
catalogue import (CATALOG_UPLOAD_MAX_BYTES), plus room for the multipart headers.
"""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import JsonResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

# Multipart boundaries, headers and small form fields around the files.
OVERHEAD_BYTES = 64 * 1024
WRITES = ("POST", "PUT", "PATCH")


def body_limit(path: str) -> int:
    """The most bytes a request body to ``path`` may have."""
    if path.startswith(reverse("admin:catalog_product_import")):
        return settings.CATALOG_UPLOAD_MAX_BYTES + OVERHEAD_BYTES
    return settings.PHOTO_UPLOAD_MAX_BYTES + OVERHEAD_BYTES


def too_large(request) -> bool:
    """Whether the request's Content-Length is over its path's limit (unread)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return length > body_limit(request.path)


class BodySizeLimitMiddleware:
    """413 for a request whose Content-Length is over the limit of its path, unread."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # The catalogue import page answers its own 413, on its page.
        if (
            request.method in WRITES
            and not request.path.startswith(reverse("admin:catalog_product_import"))
            and too_large(request)
        ):
            limit = body_limit(request.path)
            message = f"The request is larger than the {filesizeformat(limit - OVERHEAD_BYTES)} allowed."
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=413)
            return render(request, "413.html", {"message": message}, status=413)
        return self.get_response(request)


class LimitedUploadHandler(FileUploadHandler):
    """Stops reading an upload (a body sent without Content-Length) past the path's limit."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.limit = body_limit(self.request.path)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None
