from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat


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
