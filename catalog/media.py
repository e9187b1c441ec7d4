"""Product photos served by the app itself when they live in the local media folder.

Only the folders the shop writes under names it chooses (``products/<id>.jpg``) are
served; nothing a user names is. Image URLs carry the file's checksum (``?v=``), so a
versioned request may be cached for a year; an unversioned one is revalidated hourly.
With an object store (django-storages) image URLs point at the store and this view is
not routed. Files go out through FileResponse, which gunicorn sends with sendfile.
"""

import mimetypes
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponseNotModified
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.http import require_safe

SERVED_FOLDERS = ("products",)
YEAR = 365 * 24 * 3600


@require_safe
def serve(request, path):
    folder, _, name = path.partition("/")
    if folder not in SERVED_FOLDERS or not name or "/" in name or name.startswith("."):
        raise Http404("No such file.")
    file = Path(settings.MEDIA_ROOT) / folder / name
    try:
        stat = file.stat()
    except OSError:
        raise Http404("No such file.") from None
    modified = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    if modified is not None and int(stat.st_mtime) <= modified:
        response = HttpResponseNotModified()
    else:
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = FileResponse(file.open("rb"), content_type=content_type)
        response["Content-Length"] = stat.st_size
    response["Last-Modified"] = http_date(stat.st_mtime)
    response["Cache-Control"] = (
        f"public, max-age={YEAR}, immutable" if "v" in request.GET else "public, max-age=3600"
    )
    return response
