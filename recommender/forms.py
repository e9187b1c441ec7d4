"""The search-by-photo form (upload or catalogue photo, and the result filters)."""

from django import forms

from catalog.filters import FACET_LABELS, FACETS
from catalog.importing.images import photo_upload_limit_exceeded
from catalog.models import Product

from .neighbours import RESULT_FILTERS, result_filters
from .photo_search import crop_from

# image/* lets phones offer the camera as well as the gallery; Pillow decides what is an image.
IMAGE_TYPES = "image/*"
# Result filters offered as lists on the page; the others come from "Looks like" chips.
CHOSEN_FROM_LISTS = ("gender", "masterCategory")


def _choices(field):
    values = (
        Product.objects.visible()
        .exclude(**{field: ""})
        .values_list(field, flat=True)
        .distinct()
        .order_by(field)
    )
    return [("", "Any")] + [(value, value) for value in values]


class PhotoSearchForm(forms.Form):
    """Search by photo: an uploaded photo, or the photo of a catalogue product."""

    photo = forms.FileField(
        required=False,
        label="Your photo",
        help_text="A JPEG, PNG or WebP photo of a garment, shoe or accessory.",
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_TYPES}),
    )
    product = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)
    refine = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # The part of the photo to search, as fractions; set by the crop box (JavaScript).
    crop_x = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)
    crop_y = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)
    crop_width = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)
    crop_height = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in RESULT_FILTERS:
            if param in CHOSEN_FROM_LISTS:
                self.fields[param] = forms.ChoiceField(
                    required=False, label=FACET_LABELS[param], choices=_choices(FACETS[param])
                )
            else:  # set by a "Looks like" chip
                self.fields[param] = forms.CharField(
                    required=False, max_length=50, label=FACET_LABELS[param], widget=forms.HiddenInput
                )

    def clean_photo(self):
        photo = self.cleaned_data.get("photo")
        limit = photo and photo_upload_limit_exceeded(photo)
        if limit:
            raise forms.ValidationError(f"This photo is too large: the limit is {limit}.")
        return photo

    def clean(self):
        data = super().clean()
        if not data.get("photo") and not data.get("product") and not data.get("refine") and not self.errors:
            raise forms.ValidationError("Choose a photo to search with.")
        try:
            data["crop"] = crop_from(data)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data

    def filter_fields(self):
        """The result filters' bound fields, for the template."""
        return [self[param] for param in CHOSEN_FROM_LISTS]

    def filters(self):
        return result_filters(self.cleaned_data)
