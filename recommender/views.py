"""The search-by-photo page."""

import base64
import io
import logging
from urllib.parse import urlencode

from django.shortcuts import get_object_or_404, render
from PIL import Image

from catalog.models import Product
from config.throttling import rate_limited

from .active_model import prepare_photo
from .embedding import EmbedderUnavailable, InvalidImage
from .forms import PhotoSearchForm
from .photo_search import (
    PHOTO_SEARCH_STARTING,
    RETRY_AFTER_SECONDS,
    PhotoQuery,
    read_photo,
    search_by_product_photo,
    search_with,
)

logger = logging.getLogger(__name__)
PREVIEW_SIZE = (320, 320)
EXAMPLE_COUNT = 12
# The last uploaded photo's features, for refining its results (never the photo).
SESSION_PHOTO_KEY = "photo_search_query"


def _preview_data_url(data):
    """A small re-encoded JPEG of the shopper's photo to show beside the results.

    The upload itself is never stored or served back as sent."""
    array = prepare_photo(data)
    image = Image.fromarray(array)
    image.thumbnail(PREVIEW_SIZE)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _chips(looks_like, active):
    """Links for "Looks like" chips: each refines the last photo's results by what the
    model sees, or, when that filter is on, takes it off again."""
    chips = []
    for seen in looks_like:
        on = active.get(seen["param"]) == seen["value"]
        params = {key: value for key, value in active.items() if key != seen["param"]}
        if not on:
            params[seen["param"]] = seen["value"]
        chips.append({**seen, "on": on, "url": "?" + urlencode({"refine": 1, **params})})
    return chips


@rate_limited("photo_search")
def photo_search(request):
    """Search by photo: upload a photo (POST), pick a catalogue photo (GET ?product=), or
    refine the last uploaded photo's results by a "Looks like" chip (GET ?refine=1)."""
    context = {
        "results": None,
        "query_image": None,
        "query_product": None,
        "looks_like": [],
        "refined": False,
    }
    if request.method == "POST":
        form = PhotoSearchForm(request.POST, request.FILES)
    elif "product" in request.GET or "refine" in request.GET:
        form = PhotoSearchForm(request.GET)
    else:
        form = PhotoSearchForm()
    if form.is_bound and form.is_valid():
        filters = form.filters()
        photo = form.cleaned_data.get("photo")
        try:
            if photo:
                data = photo.read()
                query = read_photo(data, crop=form.cleaned_data.get("crop"))
                request.session[SESSION_PHOTO_KEY] = query.as_text()
                found = search_with(query, filters=filters)
                context.update(results=found.products, looks_like=found.looks_like)
                context["query_image"] = _preview_data_url(data)
                # Adding a result to the cart without JavaScript comes back to these
                # results (refined from the session), not to an empty upload form.
                context["return_to"] = "?" + urlencode({"refine": 1, **filters})
            elif form.cleaned_data.get("product"):
                product = get_object_or_404(Product.objects.visible(), pk=form.cleaned_data["product"])
                context["query_product"] = product
                context["results"] = search_by_product_photo(product.pk, filters=filters)
            elif request.session.get(SESSION_PHOTO_KEY):
                found = search_with(PhotoQuery.from_text(request.session[SESSION_PHOTO_KEY]), filters=filters)
                context.update(results=found.products, looks_like=found.looks_like, refined=True)
            else:
                form.add_error(None, "Your last photo search has expired; please choose the photo again.")
        except InvalidImage as exc:
            form.add_error("photo", str(exc))
        except EmbedderUnavailable as exc:
            logger.warning("Photo search unavailable: %s", exc)
            form.add_error(None, PHOTO_SEARCH_STARTING)
            context["unavailable"] = True
    context["form"] = form
    active = form.filters() if form.is_bound and not form.errors else {}
    context["chips"] = _chips(context["looks_like"], active)
    if context["results"] is None:
        context["examples"] = list(
            Product.objects.available().exclude(image="").order_by("?")[:EXAMPLE_COUNT]
        )
    status = 400 if form.is_bound and form.errors else 200
    if context.get("unavailable"):
        status = 503
    response = render(request, "recommender/photo_search.html", context, status=status)
    if status == 503:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
