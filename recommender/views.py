"""The search-by-photo page."""

import base64
import io
import logging

from django.shortcuts import get_object_or_404, render
from PIL import Image

from catalog.models import Product

from .active_model import prepare_photo
from .embedding import InvalidImage
from .forms import PhotoSearchForm
from .photo_search import search_by_photo, search_by_product_photo

logger = logging.getLogger(__name__)
PREVIEW_SIZE = (320, 320)
EXAMPLE_COUNT = 12


def _preview_data_url(data):
    """A small re-encoded JPEG of the shopper's photo to show beside the results.

    The upload itself is never stored or served back as sent."""
    array = prepare_photo(data)
    image = Image.fromarray(array)
    image.thumbnail(PREVIEW_SIZE)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def photo_search(request):
    """Search by photo: upload a photo (POST) or pick a catalogue photo (GET ?product=)."""
    context = {"results": None, "query_image": None, "query_product": None}
    if request.method == "POST":
        form = PhotoSearchForm(request.POST, request.FILES)
    elif "product" in request.GET:
        form = PhotoSearchForm(request.GET)
    else:
        form = PhotoSearchForm()
    if form.is_bound and form.is_valid():
        filters = form.filters()
        photo = form.cleaned_data.get("photo")
        try:
            if photo:
                data = photo.read()
                context["results"] = search_by_photo(data, filters=filters)
                context["query_image"] = _preview_data_url(data)
            else:
                product = get_object_or_404(Product.objects.visible(), pk=form.cleaned_data["product"])
                context["query_product"] = product
                context["results"] = search_by_product_photo(product.pk, filters=filters)
        except InvalidImage as exc:
            form.add_error("photo", str(exc))
    context["form"] = form
    if context["results"] is None:
        context["examples"] = list(
            Product.objects.available().exclude(image="").order_by("?")[:EXAMPLE_COUNT]
        )
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "recommender/photo_search.html", context, status=status)
