"""The Annoy index builds: build into new files, publish them, and load the current build
for queries (switching when another process publishes a new one).

An index file is immutable once built (Annoy's own advice). A rebuild writes
``build-<id>.ann``, ``build-<id>.ids.npy`` (item number -> product id) and
``build-<id>.neighbours.npy`` (each item's nearest items), stores them under
``builds/<id>/`` in the search files storage (recommender.search_files: a folder or an
object store every host reads), then replaces ``current.json``, the pointer naming the
current build with the size and checksum of each of its files.

A web process looks at the pointer at most every settings.INDEX_POINTER_CHECK_SECONDS, not
on every query. When it names a new build, the process copies the files into its host's
cache folder (settings.INDEX_CACHE_DIR), checks and loads them, and switches; queries
meanwhile use the build loaded before. A new build that cannot be fetched or is damaged
is not switched to: the previous build goes on serving and the failure is logged. With no
usable build at all, IndexUnavailable tells callers to search exactly and ask for a
rebuild.

Annoy memory-maps its file, and a process whose mapped file is truncated under it dies of
SIGBUS on its next query. So each process maps its own sealed in-memory copy of the build
(nothing can shrink it), checked against the recorded size and checksum as it is copied.
"""

import fcntl
import hashlib
import io
import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex
from django.conf import settings
from django.core.cache import cache
from django.utils.dateparse import parse_datetime

from . import neighbour_lists, search_files
from .search_files import DamagedFile

logger = logging.getLogger(__name__)

POINTER_NAME = "current.json"
LOCK_NAME = "build.lock"
LOCK_CACHE_KEY = "recommender:index-build-lock"
KEEP_BUILDS = 2
# Neighbours stored per product at build time, so a product page reads its similar
# items instead of searching the index.
PRECOMPUTED_NEIGHBOURS = 40
RERANK_POOL_FACTOR = 2
# A published build that could not be fetched is tried again after this long (not at
# every pointer check: a damaged file would be downloaded again and again).
RETRY_FAILED_FETCH_SECONDS = 30


class IndexUnavailable(Exception):
    """There is no usable index file; callers fall back to exact search."""


def index_dir() -> Path:
    """The folder of the search files when they are kept in a folder (settings.INDEX_DIR),
    created when missing; it also holds the build lock file."""
    path = Path(settings.INDEX_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fsync_file(path):
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _atomic_write_bytes(path, data):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextmanager
def build_lock(folder=None):
    """Held while a build reads the vectors and publishes itself: concurrent rebuilds (two
    workers, a command and a task) run one after the other, so neither overwrites the
    other's pointer nor deletes its files, and the last to finish holds the newest vectors.

    With settings.REDIS_URL the lock is a key in the shared cache, so it covers every host;
    it expires after settings.INDEX_BUILD_LOCK_SECONDS should its holder die, and a build
    running longer than that is no longer exclusive. Without Redis it is a lock file in the
    index folder (``folder`` or INDEX_DIR), which covers the processes of one host, or the
    hosts that share that folder over a network file system.
    """
    if folder is None and settings.REDIS_URL:
        with _cache_lock():
            yield
        return
    folder = Path(folder) if folder is not None else index_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def _cache_lock():
    token = uuid.uuid4().hex
    seconds = settings.INDEX_BUILD_LOCK_SECONDS
    deadline = time.monotonic() + seconds
    # cache.add is atomic (SET NX in Redis); an unreachable Redis answers False, so the
    # wait is bounded.
    while not cache.add(LOCK_CACHE_KEY, token, timeout=seconds):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the index build lock was not free within {seconds} s (or the cache is down)")
        time.sleep(0.2)
    try:
        yield
    finally:
        if cache.get(LOCK_CACHE_KEY) == token:
            cache.delete(LOCK_CACHE_KEY)


def write_build(
    build_id, vectors, product_ids, n_trees, metadata, folder=None, search_k=None, rerank=None
) -> str:
    """Write an Annoy file for ``vectors`` and make it the current build.

    ``vectors`` are L2-normalised float32 rows, ``product_ids`` the product of each row.
    Without ``folder`` the build is published in the search files storage and the stored
    name of its Annoy file is returned (``builds/<id>/build-<id>.ann``); with one, the
    build is written into that local folder alone (scratch indexes of the quality
    tooling, read back with read_build) and the file's name there is returned.
    ``search_k`` (for stored neighbour lists of a catalogue too large to list exactly,
    see recommender.neighbour_lists) defaults to settings.ANNOY_SEARCH_K.
    ``rerank(items, candidates, similarities)``, when given, re-orders each item's nearest
    candidates (item numbers, one row per item) before the stored lists are cut.
    """
    search_k = settings.ANNOY_SEARCH_K if search_k is None else search_k
    dimensions = int(vectors.shape[1])
    names = {
        "ann": f"build-{build_id}.ann",
        "ids": f"build-{build_id}.ids.npy",
        "neighbours": f"build-{build_id}.neighbours.npy",
    }
    with _work_folder(folder) as work:
        tmp_ann = work / (names["ann"] + ".tmp")
        # The trees are built in a thread beside the neighbour lists: the lists keep only
        # one core busy while they merge candidates, and numpy and Annoy's build let go
        # of the GIL.
        with ThreadPoolExecutor(1, thread_name_prefix="annoy-trees") as trees:
            index = trees.submit(_annoy_file, vectors, n_trees, tmp_ann)
            neighbours = neighbour_lists.of_every_item(
                vectors, index.result, PRECOMPUTED_NEIGHBOURS, search_k, rerank, RERANK_POOL_FACTOR
            )
            index.result().unload()
        _fsync_file(tmp_ann)
        os.replace(tmp_ann, work / names["ann"])
        _atomic_write_bytes(work / names["ids"], _npy_bytes(np.asarray(product_ids, dtype=np.int64)))
        _atomic_write_bytes(work / names["neighbours"], _npy_bytes(neighbours))
        files = {name: search_files.file_record(work / name) for name in names.values()}
        pointer = dict(
            metadata,
            build_id=build_id,
            **names,
            dimensions=dimensions,
            items=len(product_ids),
            ann_bytes=files[names["ann"]]["bytes"],
            files=files,
        )
        if folder is None:
            return _publish(work, pointer)
        _atomic_write_bytes(work / POINTER_NAME, json.dumps(pointer).encode())
        _remove_old_local_builds(work, keep={names["ann"]})
        return names["ann"]


def _annoy_file(vectors, n_trees, path) -> AnnoyIndex:
    """An Annoy index of ``vectors`` (item i is row i), saved at ``path``."""
    index = AnnoyIndex(int(vectors.shape[1]), "angular")
    for item, vector in enumerate(vectors):
        # A plain list: Annoy reads a numpy row one boxed number at a time (twice as slow).
        index.add_item(item, vector.tolist())
    index.build(n_trees, n_jobs=1)
    index.save(str(path))
    return index


@contextmanager
def _work_folder(folder):
    """The folder a build is written in: the given one, or a scratch folder whose files
    are then stored."""
    if folder is not None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with search_files.staging_folder() as staging:
        yield staging


def _publish(work, pointer) -> str:
    """Store the build's files under their immutable names, then the pointer: a host
    that sees the new pointer finds every file it names."""
    prefix = f"{search_files.BUILDS}/{pointer['build_id']}"
    for name in pointer["files"]:
        search_files.store_file(work / name, f"{prefix}/{name}")
    pointer = dict(pointer, folder=prefix)
    search_files.replace_file(POINTER_NAME, json.dumps(pointer).encode())
    _remove_old_published_builds(keep=str(pointer["build_id"]))
    return f"{prefix}/{pointer['ann']}"


def _remove_old_published_builds(keep):
    """Keep the published build ``keep`` and the newest KEEP_BUILDS - 1 others (a host
    may still be copying the previous one)."""
    builds = sorted((f for f in search_files.stored_folders(search_files.BUILDS) if f.isdigit()), key=int)
    others = [build for build in reversed(builds) if build != keep]
    for old in others[KEEP_BUILDS - 1 :]:
        search_files.delete_folder(f"{search_files.BUILDS}/{old}")
    # Builds of the earlier layout (files beside the pointer) are superseded by now.
    try:
        top_files = search_files.search_storage().listdir("")[1]
    except FileNotFoundError:
        top_files = []
    for name in top_files:
        if name.startswith("build-"):
            search_files.search_storage().delete(name)


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _remove_old_local_builds(folder, keep):
    builds = sorted(folder.glob("build-*.ann"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[KEEP_BUILDS:]:
        if old.name in keep:
            continue
        stem = old.name.removesuffix(".ann")
        for path in (old, old.with_name(f"{stem}.ids.npy"), old.with_name(f"{stem}.neighbours.npy")):
            path.unlink(missing_ok=True)


@dataclass
class LoadedIndex:
    """A memory-mapped build, ready for queries."""

    build_id: int
    model_name: str
    dimensions: int
    vectors_until: object
    annoy: object
    product_ids: np.ndarray
    positions: dict
    neighbours: np.ndarray
    # What the build recorded about itself (model, vector space...).
    metadata: dict

    def __len__(self):
        return len(self.product_ids)

    def neighbours_of_vector(self, vector, count, search_k=None):
        """(product id, angular distance) of the ``count`` nearest items, nearest first."""
        search_k = settings.ANNOY_SEARCH_K if search_k is None else search_k
        items, distances = self.annoy.get_nns_by_vector(
            vector, count, search_k=search_k, include_distances=True
        )
        return [(int(self.product_ids[item]), distance) for item, distance in zip(items, distances)]

    def stored_neighbours(self, product_id):
        """Product ids of the product's nearest items as computed at build time, nearest
        first; None when the product is not in this build."""
        item = self.positions.get(product_id)
        if item is None:
            return None
        row = self.neighbours[item]
        return self.product_ids[row[row >= 0]].tolist()

    def vector_of_product(self, product_id):
        item = self.positions.get(product_id)
        if item is None:
            return None
        return np.asarray(self.annoy.get_item_vector(item), dtype=np.float32)


_SEALS = (
    getattr(fcntl, "F_SEAL_SHRINK", 0)
    | getattr(fcntl, "F_SEAL_GROW", 0)
    | getattr(fcntl, "F_SEAL_WRITE", 0)
    | getattr(fcntl, "F_SEAL_SEAL", 0)
)
_COPY_CHUNK = 8 << 20


def _record(pointer, name) -> dict:
    """The recorded size and checksum of one of the build's files (pointers written before
    checksums were recorded know the Annoy file's size only)."""
    record = pointer.get("files", {}).get(name)
    if record is None and name == pointer["ann"]:
        record = {"bytes": pointer["ann_bytes"]}
    return record or {}


def _load_annoy(path, dimensions, record):
    """An AnnoyIndex of ``path`` mapped from a private copy sealed against any change
    (Linux memfd), so truncating the file on disk can never crash this process. The copy
    is checked against the recorded size and checksum. Elsewhere the file itself is
    mapped, after the same checks."""
    # A cheap refusal before copying a damaged file.
    search_files.check_record(path.name, path.stat().st_size, {"bytes": record.get("bytes")})
    index = AnnoyIndex(dimensions, "angular")
    if not hasattr(os, "memfd_create") or not _SEALS:
        checked = search_files.file_record(path)
        search_files.check_record(path.name, checked["bytes"], record, checked["sha256"])
        index.load(str(path))
        return index
    copy = os.memfd_create(path.name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as source, open(copy, "wb", closefd=False) as target:
            while chunk := source.read(_COPY_CHUNK):
                digest.update(chunk)
                target.write(chunk)
        fcntl.fcntl(copy, fcntl.F_ADD_SEALS, _SEALS)
        # The copy, not the file, is what gets mapped: check the copy.
        search_files.check_record(path.name, os.fstat(copy).st_size, record, digest.hexdigest())
        index.load(f"/proc/self/fd/{copy}")  # Annoy opens and maps the copy itself
    finally:
        os.close(copy)
    return index


def _read_array(path, record):
    # Read whole (small), never mapped: they cannot be truncated under this process either.
    data = path.read_bytes()
    search_files.check_record(path.name, data, record)
    return np.load(io.BytesIO(data), allow_pickle=False)


def _load(folder, pointer):
    ann = pointer["ann"]
    index = _load_annoy(folder / ann, int(pointer["dimensions"]), _record(pointer, ann))
    product_ids = _read_array(folder / pointer["ids"], _record(pointer, pointer["ids"]))
    neighbours = _read_array(folder / pointer["neighbours"], _record(pointer, pointer["neighbours"]))
    if not len(product_ids) == len(neighbours) == index.get_n_items() == pointer["items"]:
        raise IndexUnavailable("index file and id map disagree")
    return LoadedIndex(
        build_id=int(pointer["build_id"]),
        model_name=pointer["model_name"],
        dimensions=int(pointer["dimensions"]),
        vectors_until=parse_datetime(pointer["vectors_until"]) if pointer.get("vectors_until") else None,
        annoy=index,
        product_ids=product_ids,
        positions={int(pid): item for item, pid in enumerate(product_ids)},
        neighbours=neighbours,
        metadata=pointer,
    )


def _stored_name(pointer, name):
    folder = pointer.get("folder")  # absent in pointers of the earlier, flat layout
    return f"{folder}/{name}" if folder else name


def _stored_files(pointer) -> dict:
    """{stored name: recorded size and checksum} of the build's files."""
    return {
        _stored_name(pointer, pointer[key]): _record(pointer, pointer[key])
        for key in ("ann", "ids", "neighbours")
    }


def _fetch(pointer_bytes, pointer) -> "LoadedIndex":
    """Load the build ``pointer`` names from this host's copy, made first when missing."""
    # Named by the pointer's content: a build id alone could come back with other files
    # (a database restored from a backup).
    key = f"build-{pointer['build_id']}-{hashlib.sha256(pointer_bytes).hexdigest()[:12]}"
    files = _stored_files(pointer)
    try:
        return _load(search_files.cached_build(key, files), pointer)
    except (DamagedFile, FileNotFoundError):
        # The local copy was damaged or removed after it was made: copy it again, once.
        search_files.discard_cached_build(key)
        return _load(search_files.cached_build(key, files), pointer)


# The build this process serves and what it knows of the published pointer. Queries read
# "index" without the lock; one thread at a time follows the pointer and swaps it.
_lock = threading.Lock()
_state = {"index": None, "pointer": None, "checked_at": None, "failed": None, "problem": None}


def current_index(model_name=None):
    """The current build, switched to a newly published one at the next pointer check.

    Raises IndexUnavailable when no build has been published, none could be fetched and
    loaded here, or the build is of another model.
    """
    loaded = _state["index"]
    if _pointer_check_due():
        loaded = _follow_pointer(wait=loaded is None)
    if loaded is None:
        raise IndexUnavailable(_state["problem"] or "no index has been built yet")
    if model_name and loaded.model_name != model_name:
        raise IndexUnavailable(f"index is of model {loaded.model_name}, not {model_name}")
    return loaded


def _pointer_check_due() -> bool:
    checked_at = _state["checked_at"]
    return checked_at is None or time.monotonic() - checked_at >= settings.INDEX_POINTER_CHECK_SECONDS


def _follow_pointer(wait):
    """Read the published pointer and switch to the build it names; returns the build to
    serve (None if there is none). A thread that finds another one switching serves the
    loaded build meanwhile instead of waiting (unless nothing is loaded yet)."""
    if not _lock.acquire(blocking=wait):
        return _state["index"]
    try:
        if _state["index"] is not None and not _pointer_check_due():
            return _state["index"]  # checked by another thread while this one waited
        _state["checked_at"] = time.monotonic()
        try:
            raw = search_files.read_file(POINTER_NAME)
        except FileNotFoundError:
            # Nothing is published (any more): there is nothing to serve.
            _state.update(index=None, pointer=None, failed=None, problem="no index has been built yet")
            return None
        except Exception as exc:  # noqa: BLE001 - a store that is down or refuses: keep serving
            _note_problem(f"the index pointer cannot be read: {exc}")
            return _state["index"]
        if raw == _state["pointer"]:
            return _state["index"]
        failed = _state["failed"]
        if failed and failed[0] == raw and time.monotonic() - failed[1] < RETRY_FAILED_FETCH_SECONDS:
            return _state["index"]
        try:
            pointer = json.loads(raw)
            loaded = _fetch(raw, pointer)
        except Exception as exc:  # noqa: BLE001 - corrupt pointer, missing or damaged files, store down
            _state["failed"] = (raw, time.monotonic())
            _note_problem(f"the published index build cannot be used: {exc}")
            return _state["index"]
        _state.update(index=loaded, pointer=raw, failed=None, problem=None)
        logger.info("Serving index build %s (%s products)", loaded.build_id, len(loaded))
        return loaded
    finally:
        _lock.release()


def _note_problem(problem):
    if _state["problem"] != problem:  # said once, not at every check
        serving = _state["index"]
        logger.warning(
            "%s; %s",
            problem,
            f"still serving build {serving.build_id}" if serving else "searches are exact meanwhile",
        )
    _state["problem"] = problem


def publication_problem(loaded) -> str | None:
    """Why a host starting now could not serve what this process serves, or None: the
    published build could not be fetched here, or the loaded build's stored files are
    gone or of the wrong size (one size request per file: for health checks, not queries)."""
    if _state["problem"] and _state["index"] is loaded:
        return _state["problem"]
    wrong = []
    for name, record in _stored_files(loaded.metadata).items():
        try:
            size = search_files.stored_size(name)
        except Exception as exc:  # noqa: BLE001 - an unreachable store is the answer here
            return f"the search files store cannot be reached: {exc}"
        if size is None or (record.get("bytes") is not None and size != record["bytes"]):
            wrong.append(name)
    if wrong:
        return f"{', '.join(wrong)} missing or truncated in the search files store"
    return None


def build_is_published() -> bool:
    """Whether the store holds a pointer (of any model's build)."""
    return search_files.stored_size(POINTER_NAME) is not None


def read_build(folder) -> "LoadedIndex":
    """The current build of a local index folder written by ``write_build(folder=...)``,
    outside this process's loaded build (quality tooling builds scratch indexes this way)."""
    folder = Path(folder)
    return _load(folder, json.loads((folder / POINTER_NAME).read_text()))


def forget_loaded_index():
    """Drop the process's loaded build and what it knows of the pointer (tests, and after
    deleting index files)."""
    with _lock:
        _state.update(index=None, pointer=None, checked_at=None, failed=None, problem=None)
