"""The Annoy index files: build into new files, swap the current build atomically, and
load it for queries (reloaded when another process swaps in a new build).

An index file is immutable once built (Annoy's own advice): a rebuild writes
``build-<id>.ann`` and ``build-<id>.ids.npy`` (item number -> product id), then replaces
``current.json``, the pointer every web process checks before a query. Readers that still
hold the previous build keep it until they see the new pointer.

Annoy memory-maps its file, and a process whose mapped file is truncated under it dies of
SIGBUS on its next query. So each process maps its own sealed in-memory copy of the build
(nothing can shrink it), and before every query checks that the build on disk is still
whole: a deleted or truncated build is not served (callers search exactly and ask for a
rebuild), also in the processes that loaded it before the damage.
"""

import fcntl
import io
import json
import logging
import os
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex
from django.conf import settings
from django.utils.dateparse import parse_datetime

logger = logging.getLogger(__name__)

POINTER_NAME = "current.json"
LOCK_NAME = "build.lock"
KEEP_BUILDS = 2
# Neighbours stored per product at build time, so a product page reads its similar
# items instead of searching the index.
PRECOMPUTED_NEIGHBOURS = 40
RERANK_POOL_FACTOR = 2


class IndexUnavailable(Exception):
    """There is no usable index file; callers fall back to exact search."""


def index_dir() -> Path:
    """The folder of the index files (settings.INDEX_DIR), created when missing."""
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
    """Held while a build reads the vectors and swaps itself in: concurrent rebuilds (two
    workers, a command and a task) run one after the other, so neither overwrites the
    other's pointer nor deletes its files, and the last to finish holds the newest vectors.
    A lock file in the index folder works across the processes and hosts sharing it."""
    folder = Path(folder) if folder is not None else index_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_build(
    build_id, vectors, product_ids, n_trees, metadata, folder=None, search_k=None, rerank=None
) -> str:
    """Write an Annoy file for ``vectors`` and make it the current build.

    ``vectors`` are L2-normalised float32 rows, ``product_ids`` the product of each row.
    ``folder`` defaults to settings.INDEX_DIR and ``search_k`` (for the stored neighbour
    lists) to settings.ANNOY_SEARCH_K. ``rerank(items, candidates, similarities)``, when
    given, re-orders each item's nearest candidates (item numbers, one row per item) before
    the stored lists are cut. Returns the file name of the new index.
    """
    folder = Path(folder) if folder is not None else index_dir()
    search_k = settings.ANNOY_SEARCH_K if search_k is None else search_k
    dimensions = int(vectors.shape[1])
    ann_name = f"build-{build_id}.ann"
    ids_name = f"build-{build_id}.ids.npy"
    neighbours_name = f"build-{build_id}.neighbours.npy"
    tmp_ann = folder / (ann_name + ".tmp")
    index = AnnoyIndex(dimensions, "angular")
    for item, vector in enumerate(vectors):
        index.add_item(item, vector)
    index.build(n_trees, n_jobs=1)
    index.save(str(tmp_ann))
    neighbours = _neighbours_of_every_item(index, len(vectors), search_k, rerank)
    index.unload()
    _fsync_file(tmp_ann)
    os.replace(tmp_ann, folder / ann_name)
    _atomic_write_bytes(folder / ids_name, _npy_bytes(np.asarray(product_ids, dtype=np.int64)))
    _atomic_write_bytes(folder / neighbours_name, _npy_bytes(neighbours))
    pointer = dict(
        metadata,
        build_id=build_id,
        ann=ann_name,
        ids=ids_name,
        neighbours=neighbours_name,
        dimensions=dimensions,
        items=len(product_ids),
        ann_bytes=(folder / ann_name).stat().st_size,
    )
    _atomic_write_bytes(folder / POINTER_NAME, json.dumps(pointer).encode())
    _remove_old_builds(folder, keep={ann_name, ids_name})
    return ann_name


def _neighbours_of_every_item(index, count, search_k, rerank=None, block=1024):
    """For each item, its nearest other items (-1 where there are fewer), as int32 rows."""
    width = min(PRECOMPUTED_NEIGHBOURS, max(count - 1, 0))
    # A re-ranked list is cut from a wider pool of candidates.
    pool = min(width * RERANK_POOL_FACTOR, max(count - 1, 0)) if rerank else width
    neighbours = np.full((count, width), -1, dtype=np.int32)
    for start in range(0, count, block):
        items = np.arange(start, min(start + block, count))
        candidates = np.full((len(items), pool), -1, dtype=np.int64)
        similarities = np.full((len(items), pool), -np.inf, dtype=np.float32)
        for row, item in enumerate(items):
            found, distances = index.get_nns_by_item(
                int(item), pool + 1, search_k=search_k, include_distances=True
            )
            kept = [(other, d) for other, d in zip(found, distances) if other != item][:pool]
            candidates[row, : len(kept)] = [other for other, _ in kept]
            similarities[row, : len(kept)] = [1.0 - d * d / 2.0 for _, d in kept]
        if rerank:  # missing candidates (-1, similarity -inf) stay last
            candidates = rerank(items, candidates, similarities)
        neighbours[items] = candidates[:, :width]
    return neighbours


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _remove_old_builds(folder, keep):
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


_lock = threading.Lock()
_state = {"key": None, "index": None}
_SEALS = (
    getattr(fcntl, "F_SEAL_SHRINK", 0)
    | getattr(fcntl, "F_SEAL_GROW", 0)
    | getattr(fcntl, "F_SEAL_WRITE", 0)
    | getattr(fcntl, "F_SEAL_SEAL", 0)
)
_COPY_CHUNK = 8 << 20


def _check_size(path, expected):
    if path.stat().st_size != expected:
        raise IndexUnavailable(f"{path.name} has the wrong size (truncated or replaced)")


def _load_annoy(path, dimensions, expected_bytes):
    """An AnnoyIndex of ``path`` mapped from a private copy sealed against any change
    (Linux memfd), so truncating the file on disk can never crash this process. Elsewhere
    the file itself is mapped, after the same size check."""
    _check_size(path, expected_bytes)  # cheap refusal before copying a damaged file
    index = AnnoyIndex(dimensions, "angular")
    if not hasattr(os, "memfd_create") or not _SEALS:
        index.load(str(path))
        return index
    copy = os.memfd_create(path.name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        with open(path, "rb") as source, open(copy, "wb", closefd=False) as target:
            shutil.copyfileobj(source, target, _COPY_CHUNK)
        fcntl.fcntl(copy, fcntl.F_ADD_SEALS, _SEALS)
        # The copy, not the file, is what gets mapped: check its size.
        if os.fstat(copy).st_size != expected_bytes:
            raise IndexUnavailable(f"{path.name} changed size while it was read")
        index.load(f"/proc/self/fd/{copy}")  # Annoy opens and maps the copy itself
    finally:
        os.close(copy)
    return index


def _load(folder, pointer):
    index = _load_annoy(folder / pointer["ann"], int(pointer["dimensions"]), int(pointer["ann_bytes"]))
    # Read whole (small), never mapped: they cannot be truncated under this process either.
    product_ids = np.load(folder / pointer["ids"], allow_pickle=False)
    neighbours = np.load(folder / pointer["neighbours"], allow_pickle=False)
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


def current_index(model_name=None):
    """The current build, reloaded when another process has swapped in a new one.

    Raises IndexUnavailable when there is no build, the files are missing or corrupt, or
    the build is of another model.
    """
    pointer_path = Path(settings.INDEX_DIR) / POINTER_NAME
    try:
        stat = pointer_path.stat()
    except FileNotFoundError:
        raise IndexUnavailable("no index has been built yet") from None
    key = (str(pointer_path), stat.st_mtime_ns, stat.st_size, stat.st_ino)
    loaded = _state["index"]
    if _state["key"] != key:
        with _lock:
            if _state["key"] != key:
                try:
                    pointer = json.loads(pointer_path.read_text())
                    loaded = _load(pointer_path.parent, pointer)
                except IndexUnavailable:
                    raise
                except Exception as exc:  # corrupt pointer, truncated or missing file
                    logger.warning("Index at %s is unusable: %s", pointer_path.parent, exc)
                    raise IndexUnavailable(f"index unusable: {exc}") from exc
                _state.update(key=key, index=loaded)
            loaded = _state["index"]
    _check_still_on_disk(pointer_path.parent, loaded)
    if model_name and loaded.model_name != model_name:
        raise IndexUnavailable(f"index is of model {loaded.model_name}, not {model_name}")
    return loaded


def _check_still_on_disk(folder, loaded):
    """Refuse a loaded build whose file was deleted or truncated since: this process could
    go on with its own copy, but others cannot load it, so everyone searches exactly and
    asks for a rebuild until a new build is swapped in."""
    try:
        _check_size(folder / loaded.metadata["ann"], loaded.metadata["ann_bytes"])
    except (OSError, IndexUnavailable) as exc:
        if _state.get("damaged") != loaded.build_id:  # said once, not on every query
            _state["damaged"] = loaded.build_id
            logger.warning("Index build %s is damaged on disk: %s", loaded.build_id, exc)
        raise IndexUnavailable(f"index build {loaded.build_id} is damaged on disk: {exc}") from None


def read_build(folder) -> LoadedIndex:
    """The current build of another index folder, outside this process's cache
    (quality tooling builds scratch indexes this way)."""
    folder = Path(folder)
    return _load(folder, json.loads((folder / POINTER_NAME).read_text()))


def forget_loaded_index():
    """Drop the process's loaded build (tests, and after deleting index files)."""
    with _lock:
        _state.update(key=None, index=None)
