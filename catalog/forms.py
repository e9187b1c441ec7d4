from django import forms
from django.conf import settings
from django.core.files.base import ContentFile
from django.template.defaultfilters import filesizeformat

from .importing import ImageProblem
from .importing.images import photo_upload_limit_exceeded, storable_image


class CatalogueImportForm(forms.Form):
    """The admin's catalogue upload: styles.csv, a zip archive, or both.

    With both, the archive provides the images; an archive alone must hold the whole
    layout (styles.csv + images/). File names and extensions are not trusted: the import
    reads the contents.
    """

    styles_csv = forms.FileField(
        label="styles.csv",
        required=False,
        help_text="The catalogue rows (id, productDisplayName, ... and optional price and stock columns).",
    )
    archive = forms.FileField(
        label="Zip archive",
        required=False,
        help_text="images/<id>.jpg, or the whole catalogue (styles.csv + images/) in one zip.",
    )

    def clean(self):
        cleaned = super().clean()
        files = [cleaned.get("styles_csv"), cleaned.get("archive")]
        if not any(files):
            raise forms.ValidationError("Choose styles.csv, a zip archive, or both.")
        limit = settings.CATALOG_UPLOAD_MAX_BYTES
        if sum(upload.size for upload in files if upload) > limit:
            raise forms.ValidationError(f"The upload is larger than the {filesizeformat(limit)} allowed.")
        return cleaned


class ProductImageField(forms.ImageField):
    """A product photo uploaded in a form, checked like imported images.

    The content decides, never the name or type sent: Pillow must decode it within
    ``IMAGE_MAX_PIXELS``, it must be a JPEG, PNG or WebP of at most
    ``PHOTO_UPLOAD_MAX_BYTES``, and what is kept is the JPEG ``storable_image`` makes of it
    (the same rules as the catalogue import and the products API).
    """

    def __init__(self, **kwargs):
        # The name sent is never used (the file is stored under the product id).
        kwargs["max_length"] = None
        super().__init__(**kwargs)

    def to_python(self, data):
        upload = forms.FileField.to_python(self, data)
        if upload is None:
            return None
        limit = photo_upload_limit_exceeded(upload)
        if limit:
            raise forms.ValidationError(f"This image is larger than the {limit} allowed.", code="too_large")
        upload.seek(0)
        try:
            stored = storable_image(upload.read())
        except ImageProblem as problem:
            raise forms.ValidationError(
                f"This file cannot be used as a product photo: {problem}.", code="invalid_image"
            ) from None
        return ContentFile(stored, name="upload.jpg")
