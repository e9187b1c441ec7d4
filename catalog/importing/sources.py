"""Where a catalogue comes from: a folder, a zip archive, or admin uploads.

Every source gives the bytes of styles.csv and, per product id, the bytes of its image
(``images/<id>.jpg``) or None. Archives are read member by member and never extracted;
an archive holding absolute paths, ``..`` components or symlinks is refused as a whole,
so nothing in it can point outside the media folder.
"""

import re
import stat
import struct
import zipfile
import zlib
from os import PathLike
from pathlib import Path, PurePosixPath

from .errors import CatalogueFileError, ImageProblem

STYLES_NAME = "styles.csv"
IMAGES_FOLDER = "images"
# styles.csv of the full 44k catalogue is about 4 MB; anything far above is not a catalogue.
MAX_STYLES_BYTES = 200 * 1024 * 1024
# Catalogue photos are tens of kB; the limit keeps a bad or hostile file from filling memory.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# A real catalogue has one photo per product (44k) and a styles.csv; the totals below are
# far above that and far below what a zip bomb claims.
MAX_ARCHIVE_ENTRIES = 200_000
MAX_ARCHIVE_BYTES = 50 * 1024 * 1024 * 1024
# A catalogue's directory record is about 100 bytes (46 + its name and extra fields).
MAX_DIRECTORY_RECORD = 256
_IMAGE_MEMBER = re.compile(r"(\d+)\.jpe?g", re.IGNORECASE)
_DRIVE = re.compile(r"[A-Za-z]:")
_IGNORED_FOLDERS = {"__MACOSX"}
# What the zipfile module raises on damaged or unusual archives (EOFError: data cut
# short; NotImplementedError: an unknown version or compression; RuntimeError: encrypted;
# ValueError: a name that is not the UTF-8 it claims to be).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    OSError,
    ValueError,
)


def _human(size):
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024


def _reason(error):
    return str(error) or "its data ends too early"  # EOFError has no message


def _too_big(what, size, limit=None):
    limit = MAX_IMAGE_BYTES if limit is None else limit
    return f"{what} is larger than the {_human(limit)} allowed ({_human(size)})"


class NoImages:
    def image(self, product_id):
        return None

    def close(self):
        pass


class FolderImages:
    """Images in a folder as ``<id>.jpg``."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def image(self, product_id):
        path = self.folder / f"{product_id}.jpg"
        try:
            status = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(status.st_mode):
            return None
        if path.is_symlink() and not path.resolve().is_relative_to(self.folder.resolve()):
            raise ImageProblem("image file is a link to a file outside the images folder; not followed")
        size = status.st_size
        if size > MAX_IMAGE_BYTES:
            raise ImageProblem(_too_big("image file", size))
        try:
            return path.read_bytes()
        except OSError as error:
            raise ImageProblem(f"image file cannot be read ({error.strerror or error})") from error

    def close(self):
        pass


def _too_many_entries(description, count):
    return CatalogueFileError(
        f"{description} was refused: it holds {count} entries, more than the "
        f"{MAX_ARCHIVE_ENTRIES} a catalogue needs. Nothing was imported."
    )


def _check_directory(path, description):
    """Refuse an archive whose directory is too large from its end record, before the
    zipfile module reads (and keeps in memory) every entry of it."""
    with open(path, "rb") as file:
        end = zipfile._EndRecData(file)  # the end record, read as ZipFile reads it (zip64 too)
    if end is None:
        return  # not a zip: ZipFile says so
    count, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
    if count > MAX_ARCHIVE_ENTRIES:
        raise _too_many_entries(description, count)
    if size > MAX_ARCHIVE_ENTRIES * MAX_DIRECTORY_RECORD:
        raise CatalogueFileError(
            f"{description} was refused: its list of entries takes {_human(size)}, more than a catalogue "
            f"of {MAX_ARCHIVE_ENTRIES} entries needs. Nothing was imported."
        )


def _safe_members(archive, description):
    entries = archive.infolist()
    if len(entries) > MAX_ARCHIVE_ENTRIES:
        raise _too_many_entries(description, len(entries))
    unpacked = sum(info.file_size for info in entries)
    if unpacked > MAX_ARCHIVE_BYTES:
        raise CatalogueFileError(
            f"{description} was refused: it would unpack to {_human(unpacked)}, more than the "
            f"{_human(MAX_ARCHIVE_BYTES)} allowed. Nothing was imported."
        )
    unsafe = []
    for info in entries:
        name = info.filename
        parts = name.split("/")
        if (
            not name.strip("/")
            or name.startswith("/")
            or "\\" in name
            or _DRIVE.match(name)
            or ".." in parts
            or stat.S_ISLNK(info.external_attr >> 16)
        ):
            unsafe.append(name)
    if unsafe:
        shown = ", ".join(repr(name) for name in unsafe[:5])
        raise CatalogueFileError(
            f"{description} was refused: it holds entries with empty names, absolute paths, '..' or symlinks "
            f"({shown}{', ...' if len(unsafe) > 5 else ''}). Nothing was imported."
        )
    return [
        info
        for info in archive.infolist()
        if not info.is_dir() and PurePosixPath(info.filename).parts[0] not in _IGNORED_FOLDERS
    ]


class ZipImages:
    """Images inside an archive: any ``<id>.jpg`` at the root, in ``images/``, in one top
    folder or in ``<top>/images/``."""

    def __init__(self, archive, members):
        self.archive = archive
        self.members = {}
        for info in members:
            path = PurePosixPath(info.filename)
            match = _IMAGE_MEMBER.fullmatch(path.name)
            if match and len(path.parts) <= 3:
                self.members.setdefault(int(match.group(1)), info)

    def image(self, product_id):
        info = self.members.get(product_id)
        if info is None:
            return None
        if info.file_size > MAX_IMAGE_BYTES:
            raise ImageProblem(_too_big("image file", info.file_size))
        try:
            with self.archive.open(info) as member:
                data = member.read(MAX_IMAGE_BYTES + 1)
        except _ZIP_ERRORS as error:
            raise ImageProblem(f"image cannot be read from the archive ({_reason(error)})") from error
        if len(data) > MAX_IMAGE_BYTES:
            raise ImageProblem(_too_big("image file", len(data)))
        return data

    def close(self):
        self.archive.close()


class Catalogue:
    """A catalogue ready to import: its styles.csv and its images.

    Use as a context manager so an archive is closed after the import.
    """

    def __init__(self, description, read_styles, images):
        self.description = description
        self._read_styles = read_styles
        self.images = images

    def read_styles(self) -> bytes:
        """The raw bytes of styles.csv."""
        return self._read_styles()

    def image(self, product_id: int) -> bytes | None:
        """The raw bytes of a product's image, or None when the catalogue has none.

        Raises ``ImageProblem`` when the file exists but cannot be used.
        """
        return self.images.image(product_id)

    def close(self):
        self.images.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _file_reader(path):
    def read():
        size = path.stat().st_size
        if size > MAX_STYLES_BYTES:
            raise CatalogueFileError(_too_big(str(path), size, MAX_STYLES_BYTES) + ".")
        return path.read_bytes()

    return read


def _member_reader(archive, info, description):
    def read():
        if info.file_size > MAX_STYLES_BYTES:
            raise CatalogueFileError(
                _too_big(f"styles.csv in {description}", info.file_size, MAX_STYLES_BYTES) + "."
            )
        try:
            with archive.open(info) as member:
                data = member.read(MAX_STYLES_BYTES + 1)
        except _ZIP_ERRORS as error:
            raise CatalogueFileError(
                f"styles.csv cannot be read from {description} ({_reason(error)})."
            ) from error
        if len(data) > MAX_STYLES_BYTES:
            raise CatalogueFileError(
                _too_big(f"styles.csv in {description}", len(data), MAX_STYLES_BYTES) + "."
            )
        return data

    return read


def _open_zip(path, description):
    try:
        _check_directory(path, description)
        archive = zipfile.ZipFile(path)
    except (*_ZIP_ERRORS, struct.error) as error:
        raise CatalogueFileError(
            f"{description} is not a readable zip archive ({_reason(error)})."
        ) from error
    try:
        members = _safe_members(archive, description)
    except CatalogueFileError:
        archive.close()
        raise
    return archive, members


def _styles_member(members, description):
    """styles.csv at the archive root, or inside its one top folder."""
    at_root = [info for info in members if info.filename == STYLES_NAME]
    if at_root:
        return at_root[0]
    nested = [
        info
        for info in members
        if len(PurePosixPath(info.filename).parts) == 2 and PurePosixPath(info.filename).name == STYLES_NAME
    ]
    if len(nested) == 1:
        return nested[0]
    if nested:
        raise CatalogueFileError(
            f"{description} holds several styles.csv files; keep one catalogue per archive."
        )
    raise CatalogueFileError(
        f"{description} holds no styles.csv (expected at its root or inside one top folder)."
    )


def _zip_catalogue(path, description, styles_path=None):
    archive, members = _open_zip(path, description)
    try:
        if styles_path is not None:
            read_styles = _file_reader(Path(styles_path))
        else:
            read_styles = _member_reader(archive, _styles_member(members, description), description)
    except CatalogueFileError:
        archive.close()
        raise
    return Catalogue(description, read_styles, ZipImages(archive, members))


def open_catalogue(path: str | PathLike) -> Catalogue:
    """Open a catalogue given on the command line.

    ``path`` is a folder holding styles.csv and images/, a .zip archive of that layout
    (styles.csv at its root or inside one top folder), or a styles.csv file whose images
    are in an ``images`` folder beside it.
    """
    path = Path(path)
    if path.is_dir():
        styles = path / STYLES_NAME
        if not styles.is_file():
            raise CatalogueFileError(f"{path} holds no {STYLES_NAME}.")
        return Catalogue(str(path), _file_reader(styles), FolderImages(path / IMAGES_FOLDER))
    if not path.is_file():
        raise CatalogueFileError(f"{path} does not exist.")
    if zipfile.is_zipfile(path):
        return _zip_catalogue(path, str(path))
    return Catalogue(str(path), _file_reader(path), FolderImages(path.parent / IMAGES_FOLDER))


def open_uploaded_catalogue(
    styles_path: str | PathLike | None = None,
    archive_path: str | PathLike | None = None,
    description: str = "upload",
) -> Catalogue:
    """Open a catalogue uploaded through the admin.

    Either a styles.csv, a zip archive, or both: with both, the archive only provides the
    images (``<id>.jpg``, at its root or under images/); with the archive alone it must
    hold the whole layout. The files are identified by content, never by their names.
    """
    if archive_path is not None:
        if not zipfile.is_zipfile(archive_path):
            raise CatalogueFileError("The archive is not a zip file.")
        return _zip_catalogue(archive_path, description, styles_path)
    if styles_path is None:
        raise CatalogueFileError("Nothing to import: upload styles.csv, a zip archive, or both.")
    return Catalogue(description, _file_reader(Path(styles_path)), NoImages())
