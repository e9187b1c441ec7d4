"""Importing files uploaded through the admin.

Uploads are copied into a private temporary folder under fixed names (the names the
browser sent are only shown in the report), imported, and deleted afterwards whatever
happens.
"""

import tempfile
from pathlib import Path

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile

from .service import ImportReport, import_catalogue
from .sources import open_uploaded_catalogue

MAX_SHOWN_NAME = 100


def _copy(upload, path):
    with open(path, "wb") as target:
        target.writelines(upload.chunks())
    return path


def _describe(styles_upload, archive_upload, user):
    names = [upload.name[:MAX_SHOWN_NAME] for upload in (styles_upload, archive_upload) if upload]
    who = f" by {user.get_username()}" if user is not None and user.is_authenticated else ""
    return f"admin upload{who}: {' + '.join(names)}"


def import_uploaded_catalogue(
    styles_upload: UploadedFile | None = None,
    archive_upload: UploadedFile | None = None,
    *,
    user: AbstractBaseUser | None = None,
) -> ImportReport:
    """Import uploaded files (Django ``UploadedFile``s): styles.csv, a zip archive, or both.

    See ``open_uploaded_catalogue`` for how the two combine. Returns the ``ImportReport``;
    raises ``CatalogueFileError`` when the upload cannot be imported as a whole.
    """
    with tempfile.TemporaryDirectory(prefix="catalogue-upload-") as folder:
        folder = Path(folder)
        styles_path = _copy(styles_upload, folder / "styles.csv") if styles_upload else None
        archive_path = _copy(archive_upload, folder / "archive.zip") if archive_upload else None
        description = _describe(styles_upload, archive_upload, user)
        with open_uploaded_catalogue(styles_path, archive_path, description) as catalogue:
            return import_catalogue(catalogue, user=user)
