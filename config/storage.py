"""Storage backends configured in settings.STORAGES."""

from storages.backends.s3 import S3Storage

from catalog.media import IMMUTABLE
from catalog.thumbnails import FOLDER as THUMBNAILS_FOLDER


class MediaStorage(S3Storage):
    """Product photos in an S3-compatible bucket (MEDIA_BUCKET). Thumbnails are named by
    their photo's checksum and never change, so browsers and CDNs may keep them for a year;
    photos keep their name when replaced, so they are cached for the settings' hour."""

    def get_object_parameters(self, name):
        parameters = super().get_object_parameters(name)
        if name.startswith(f"{THUMBNAILS_FOLDER}/"):
            parameters["CacheControl"] = IMMUTABLE  # as the app serves them from a folder
        return parameters
