"""Product photos and their thumbnails, served by the app itself when they live in the
local media folder.

Only the folders the shop writes under names it chooses are served: ``products/<id>.jpg``
and ``thumbnails/<checksum>/<width>.webp``; nothing a user names is. Photo URLs carry the
file's checksum (``?v=``), so a versioned request may be cached for a year; an
unversioned one is revalidated hourly. Thumbnail names are their photo's checksum, so
they are cached for a year whatever the query. With an object store (django-storages)
URLs point at the store and this view is not routed. Files go out through FileResponse,
which gunicorn sends with sendfile.
"""

import re
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponseNotModified
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.http import require_safe

# A photo's name, or a thumbnail's checksum and width.
SERVED = (re.compile(r"products/[^/.][^/]*"), re.compile(r"thumbnails/[0-9a-f]{64}/[0-9]{1,5}\.webp"))
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
YEAR = 365 * 24 * 3600
IMMUTABLE = f"public, max-age={YEAR}, immutable"


@require_safe
def serve(request, path):
    if not any(pattern.fullmatch(path) for pattern in SERVED):
        raise Http404("No such file.")
    file = Path(settings.MEDIA_ROOT) / path
    try:
        stat = file.stat()
    except OSError:
        raise Http404("No such file.") from None
    modified = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    if modified is not None and int(stat.st_mtime) <= modified:
        response = HttpResponseNotModified()
    else:
        content_type = CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream")
        response = FileResponse(file.open("rb"), content_type=content_type)
        response["Content-Length"] = stat.st_size
    response["Last-Modified"] = http_date(stat.st_mtime)
    versioned = "v" in request.GET or path.startswith("thumbnails/")
    response["Cache-Control"] = IMMUTABLE if versioned else "public, max-age=3600"
    return response
