"""The search files every host reads: index builds and trained model versions.

They are kept in Django's "search_files" storage (settings.STORAGES): the folder
settings.INDEX_DIR by default, any S3-compatible store by settings. A host never serves
from the store itself: it copies what it needs into a folder of its own
(settings.INDEX_CACHE_DIR) and reads the copy.

Stored files are immutable: a build lives under ``builds/<id>/`` and the weights of a
model version under ``versions/`` with their checksum in the name, so a local copy that
matches the recorded size and checksum can be trusted. The one file ever replaced is the
pointer naming the current build, written last: atomically in a folder, by a single PUT
in an object store.
"""

import hashlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages
from django.utils.functional import cached_property

logger = logging.getLogger(__name__)

STORAGE_ALIAS = "search_files"
BUILDS = "builds"
VERSIONS = "versions"
# Local copies of builds kept besides the newest (other processes of the host may still
# be loading one).
CACHED_BUILDS_KEPT = 3
# Scratch in a host's cache this old was left by a process that died while writing: no
# build, publication or download runs this long (their tasks' time limits are far less).
ABANDONED_AFTER_SECONDS = 24 * 3600
_CHUNK = 8 << 20


class DamagedFile(OSError):
    """A file whose size or checksum is not the one recorded for it."""


class LocalSearchFiles(FileSystemStorage):
    """The search files in a folder (settings.INDEX_DIR unless ``location`` is given),
    local or mounted from a file server. Stored files may be replaced (a rebuild of the
    same build id in tests, the pointer)."""

    def __init__(self, location=None, **options):
        super().__init__(location=location, allow_overwrite=True, **options)

    @cached_property
    def base_location(self):
        return self._value_or_setting(self._location, settings.INDEX_DIR)

    def _clear_cached_properties(self, setting, **kwargs):
        super()._clear_cached_properties(setting, **kwargs)
        if setting == "INDEX_DIR":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)


def search_storage():
    """The storage holding the search files (settings.STORAGES["search_files"])."""
    return storages[STORAGE_ALIAS]


def _local_path(storage, name) -> Path | None:
    """Where ``name`` is on this machine's file system, or None in an object store."""
    try:
        return Path(storage.path(name))
    except NotImplementedError:
        return None


def cache_dir() -> Path:
    """This host's folder of local copies (settings.INDEX_CACHE_DIR), created when missing."""
    path = Path(settings.INDEX_CACHE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_record(path) -> dict:
    """Size and SHA-256 of a local file, as recorded beside stored files."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return {"bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def check_record(name, data_or_size, record, digest=None) -> None:
    """Raise DamagedFile unless a file's size (and checksum, when both are known) are the
    recorded ones."""
    size = data_or_size if isinstance(data_or_size, int) else len(data_or_size)
    if record.get("bytes") is not None and size != record["bytes"]:
        raise DamagedFile(f"{name} has {size} bytes, not {record['bytes']} (truncated or replaced)")
    if digest is None and not isinstance(data_or_size, int):
        digest = hashlib.sha256(data_or_size).hexdigest()
    if digest is not None and record.get("sha256") and digest != record["sha256"]:
        raise DamagedFile(f"{name} does not have its recorded checksum (corrupt or replaced)")


# --- Writing (workers) ---


@contextmanager
def staging_folder():
    """A scratch folder on this host for files about to be stored; removed afterwards."""
    remove_abandoned_scratch()
    folder = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_dir()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def store_file(local_path, name) -> None:
    """Store a local file under ``name`` (an immutable name: readers trust their copies)."""
    with open(local_path, "rb") as handle:
        _save(name, File(handle, name=Path(name).name))


def _save(name, content) -> None:
    saved = search_storage().save(name, content)
    if saved != name:
        raise RuntimeError(f"the search files storage stored {name} as {saved}: it must overwrite")


def replace_file(name, data: bytes) -> None:
    """Replace the file ``name`` so that readers see the old or the new content, never a
    part: a rename in a folder, one PUT in an object store."""
    storage = search_storage()
    path = _local_path(storage, name)
    if path is None:
        _save(name, ContentFile(data, name=Path(name).name))
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def delete_folder(prefix) -> None:
    """Delete every stored file under ``prefix`` (one level of folders, as builds have)."""
    storage = search_storage()
    try:
        folders, files = storage.listdir(prefix)
    except FileNotFoundError:
        return
    for sub in folders:
        delete_folder(f"{prefix}/{sub}")
    for name in files:
        storage.delete(f"{prefix}/{name}")
    path = _local_path(storage, prefix)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def stored_folders(prefix) -> list[str]:
    """Names of the folders under ``prefix`` in the store."""
    try:
        return search_storage().listdir(prefix)[0]
    except FileNotFoundError:
        return []


def stored_size(name) -> int | None:
    """Size of a stored file, None when it is not there (other failures of the store raise)."""
    try:
        return search_storage().size(name)
    except FileNotFoundError:
        return None


# --- Reading (every host) ---


def read_file(name) -> bytes:
    """The whole content of a (small) stored file; FileNotFoundError when absent."""
    with search_storage().open(name, "rb") as handle:
        return handle.read()


def download(name, target: Path, record: dict | None = None) -> str:
    """Copy a stored file to ``target`` (via a temporary name), checking the record;
    returns the SHA-256 of what was copied."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    digest = hashlib.sha256()
    size = 0
    try:
        with search_storage().open(name, "rb") as source, open(tmp, "wb") as handle:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                handle.write(chunk)
        if record:
            check_record(name, size, record, digest.hexdigest())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return digest.hexdigest()


def cached_build(key: str, files: dict) -> Path:
    """This host's folder holding a copy of the stored ``files`` ({stored name: record,
    record may be {}}), downloaded when missing. ``key`` names the copy: it must differ
    for different content. A copy whose sizes are wrong is fetched again; checksums are
    the loader's to verify (it reads every byte anyway), see discard_cached_build."""
    root = cache_dir() / BUILDS
    folder = root / key
    if _complete_copy(folder, files):
        os.utime(folder)  # most recently used: kept by prune_cached_builds
        return folder
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        for name, record in files.items():
            download(name, scratch / Path(name).name, record)
        if _complete_copy(folder, files):
            return folder  # another process of this host made the same copy meanwhile
        shutil.rmtree(folder, ignore_errors=True)  # a damaged earlier copy
        try:
            os.rename(scratch, folder)
        except OSError:  # made by another process between the check and the rename
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    prune_cached_builds(keep=key)
    return folder


def _complete_copy(folder, files) -> bool:
    """Whether ``folder`` holds every one of ``files`` in its recorded size."""
    return folder.is_dir() and all(
        _has_size(folder / Path(name).name, record) for name, record in files.items()
    )


def _has_size(path, record):
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    return record.get("bytes") is None or size == record["bytes"]


def discard_cached_build(key: str) -> None:
    """Remove a local copy found damaged, so the next use downloads it again."""
    shutil.rmtree(cache_dir() / BUILDS / key, ignore_errors=True)


def remove_abandoned_scratch() -> None:
    """Remove what a process killed while writing left in this host's cache: staging
    folders, unfinished copies and downloads (names starting with a dot) older than
    ABANDONED_AFTER_SECONDS."""
    cutoff = time.time() - ABANDONED_AFTER_SECONDS
    root = cache_dir()
    for folder in (root, root / BUILDS, root / VERSIONS):
        for path in folder.glob(".*"):
            try:
                if path.lstat().st_mtime >= cutoff:
                    continue
            except FileNotFoundError:  # removed by another process meanwhile
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def prune_cached_builds(keep: str) -> None:
    """Keep the local copy ``keep`` and the most recently used others."""
    remove_abandoned_scratch()
    root = cache_dir() / BUILDS
    copies = sorted(
        (path for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    for old in [path for path in copies if path.name != keep][CACHED_BUILDS_KEPT - 1 :]:
        # Processes that loaded it hold their own copy in memory: removing it is safe.
        shutil.rmtree(old, ignore_errors=True)


# --- Model version weights ---


def store_version_weights(version_id: int, write) -> str:
    """Store the weights of a trained version: ``write(path)`` writes them to a local
    file. Returns the name to record on the version (its checksum is part of it, so a
    host's copy can never be of other weights)."""
    with staging_folder() as folder:
        local = folder / "weights.npz"
        write(local)
        record = file_record(local)
        name = f"version-{version_id}-{record['sha256'][:16]}.npz"
        store_file(local, f"{VERSIONS}/{name}")
    return name


def version_weights_copy(name: str) -> Path:
    """A local copy of a version's stored weights (downloaded once per host).

    Weights stored before the search files storage existed (a name without a checksum)
    are read from settings.MODEL_VERSIONS_DIR. Raises FileNotFoundError when absent.
    """
    digest = _checksum_in_name(name)
    if digest is None:
        legacy = Path(settings.MODEL_VERSIONS_DIR) / name
        if not legacy.is_file():
            raise FileNotFoundError(f"model version weights {name} not found in {legacy.parent}")
        return legacy
    folder = cache_dir() / VERSIONS
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / name
    if copy.is_file() and file_record(copy)["sha256"].startswith(digest):
        return copy
    if not download(f"{VERSIONS}/{name}", copy).startswith(digest):
        copy.unlink(missing_ok=True)
        raise DamagedFile(f"stored model version weights {name} do not match their checksum")
    return copy


def _checksum_in_name(name):
    """The checksum prefix in ``version-<id>-<checksum>.npz``, None in older names."""
    parts = Path(name).stem.split("-")
    if len(parts) == 3 and len(parts[2]) == 16:
        return parts[2]
    return None
