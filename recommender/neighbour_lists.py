"""Every item's nearest other items: the neighbour lists an index build stores for
product pages. Exact up to EXACT_MAX_ITEMS items; beyond, asked of the Annoy index item
by item (exact cost grows with the square of the catalogue, see docs/scaling.md).

Cosine similarities of unit vectors are dot products, computed in square tiles of
``block`` x ``block`` rows (float32 BLAS), so memory stays bounded however many items
there are. The similarity matrix is symmetric, so each pair of items is computed once and
offered to both items, which halves the arithmetic.

Sorting whole rows would cost more than the products themselves. Instead each item keeps
its best ``pool`` candidates so far, and a tile only hands on the entries at least as near
as the worst of them: after the first tiles almost nothing passes, and what does is merged
with ``np.partition``. The result is exact: an entry that fails the test already has
``pool`` better ones.

Above REDUCE_FROM_ITEMS items of more than REDUCED_DIMENSIONS dimensions (the untrained
1,408-d space), the candidates are found in the vectors' leading REDUCED_DIMENSIONS
directions, which keep most of every dot product at a fifth of the arithmetic, and then
re-scored exactly: each item keeps its CANDIDATE_FACTOR x ``pool`` best candidates there,
and its lists are cut from them by their true similarities (recall@5 against exact lists
is measured by bench/bench_index.py; test_neighbour_lists asserts at least 0.98).

Candidates are ranked by an int64 key, similarity then item number (the lower number
first among equal similarities), so the lists do not depend on the tiling, nor do ties
between identical photos depend on the order of a partition.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .embedding import usable_cores

# Rows of a tile, whose columns are COLUMNS_PER_ROW times as many: 2048 x 8192 float32
# similarities (64 MB) whatever the number of items; narrower tiles run BLAS at half speed.
DEFAULT_BLOCK = 2048
COLUMNS_PER_ROW = 4
# Rows handed to the re-ranking callback at a time (its work arrays grow with it).
RERANK_ROWS = 1024

# Lists by products cost n^2 and Annoy per item about n; at 44,441 items products are far
# faster (bench/bench_index.py: 13 s reduced in the 1,408-d space where Annoy took 80 s),
# and the two cross near 75,000 items.
EXACT_MAX_ITEMS = 75_000

# Candidates found in fewer dimensions above this size (smaller catalogues are exact in a
# few seconds), in this many, keeping this many times the pool for the exact re-scoring.
REDUCE_FROM_ITEMS = 20_000
REDUCED_DIMENSIONS = 256
CANDIDATE_FACTOR = 1.5
# Rows the reduction's directions are taken from (a 1,408 x 1,408 matrix from them).
DIRECTIONS_SAMPLE = 16_384
# Items re-scored at a time: their candidates' vectors are gathered (rows x pool x dims).
RESCORE_ROWS = 32

_EMPTY = np.iinfo(np.int64).min
_LOW_32 = np.int64(0xFFFFFFFF)


def nearest_neighbour_lists(vectors, width, rerank=None, pool_factor=2, block=DEFAULT_BLOCK) -> np.ndarray:
    """For each row of ``vectors`` (L2-normalised float32), the row numbers of its ``width``
    nearest other rows by cosine similarity, nearest first: an int32 array (items, width),
    -1 where there are fewer other items.

    ``rerank(items, candidates, similarities)``, when given, re-orders each item's nearest
    ``width * pool_factor`` candidates before the lists are cut, as in the Annoy build:
    ``items`` int64 row numbers, ``candidates`` int64 (one row per item, nearest first,
    -1 where missing), ``similarities`` their float32 cosine similarities (-inf where
    missing); it returns the candidates re-ordered.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    count = len(vectors)
    neighbours = np.full((count, width), -1, dtype=np.int32)
    others = max(count - 1, 0)
    pool = min(width * pool_factor if rerank else width, others)
    if pool == 0:
        return neighbours
    if reduces(count, vectors.shape[1]):
        keys = _best_keys_reduced(vectors, pool, max(int(block), 1))
    else:
        keys = _best_keys(vectors, pool, max(int(block), 1))
    keys = np.sort(keys, axis=1)[:, ::-1]  # best first
    candidates, similarities = _decode(keys)
    kept = min(width, pool)
    for start in range(0, count, RERANK_ROWS):
        items = np.arange(start, min(start + RERANK_ROWS, count))
        rows = candidates[items]
        if rerank:  # missing candidates (-1, similarity -inf) stay last
            rows = rerank(items, rows, similarities[items])
        neighbours[items, :kept] = rows[:, :kept]
    return neighbours


def _best_keys(vectors, pool, block):
    """Keys of each row's ``pool`` best other rows (in no order)."""
    count = len(vectors)
    best = np.full((count, pool), _EMPTY, dtype=np.int64)
    worst = np.full(count, -np.inf, dtype=np.float32)  # similarity a candidate must reach
    width = block * COLUMNS_PER_ROW
    # Reused: a fresh 64 MB array per tile would be paged in again every time.
    tiles = np.empty(block * max(block, width), dtype=np.float32)
    passed = np.empty(block * max(block, width), dtype=bool)
    # Each block against itself first, so every row has a threshold before the long scan.
    for lo in range(0, count, block):
        hi = min(lo + block, count)
        tile = np.matmul(vectors[lo:hi], vectors[lo:hi].T, out=tiles[: (hi - lo) ** 2].reshape(hi - lo, -1))
        np.fill_diagonal(tile, -np.inf)  # not its own neighbour
        if hi - lo > pool:  # the pool-th best here is a first threshold
            worst[lo:hi] = np.partition(tile, hi - lo - pool, axis=1)[:, hi - lo - pool]
        found = np.flatnonzero(
            np.greater_equal(tile, worst[lo:hi, None], out=passed[: tile.size].reshape(tile.shape))
        )
        row, column = np.divmod(found, hi - lo)
        _merge(best, worst, lo, row, _encode(tile.ravel()[found], column + lo))
    # Then every pair of different blocks once, offered to the rows of both.
    for lo in range(0, count, block):
        hi = min(lo + block, count)
        for column_lo in range(hi, count, width):
            column_hi = min(column_lo + width, count)
            shape = (hi - lo, column_hi - column_lo)
            tile = np.matmul(
                vectors[lo:hi],
                vectors[column_lo:column_hi].T,
                out=tiles[: shape[0] * shape[1]].reshape(shape),
            )
            row_worst, column_worst = worst[lo:hi], worst[column_lo:column_hi]
            mask = passed[: tile.size].reshape(shape)
            np.greater_equal(tile, row_worst[:, None], out=mask)
            mask |= tile >= column_worst
            found = np.flatnonzero(mask)
            row, column = np.divmod(found, shape[1])
            similarity = tile.ravel()[found]
            mine = similarity >= row_worst[row]
            theirs = similarity >= column_worst[column]
            _merge(best, worst, lo, row[mine], _encode(similarity[mine], column[mine] + column_lo))
            _merge(best, worst, column_lo, column[theirs], _encode(similarity[theirs], row[theirs] + lo))
    return best


def reduces(count, dimensions) -> bool:
    """Whether lists of ``count`` vectors of ``dimensions`` come from reduced candidates."""
    return count >= REDUCE_FROM_ITEMS and dimensions > REDUCED_DIMENSIONS


def _best_keys_reduced(vectors, pool, block):
    """Keys of each row's ``pool`` best other rows (in no order), chosen by their exact
    similarities among the best candidates in the leading directions."""
    wider = min(int(pool * CANDIDATE_FACTOR), len(vectors) - 1)
    candidates = _decode(_best_keys(reduced(vectors, REDUCED_DIMENSIONS), wider, block))[0]
    best = np.empty((len(vectors), pool), dtype=np.int64)

    def rescore(start):
        rows = slice(start, min(start + RESCORE_ROWS, len(vectors)))
        found = candidates[rows]  # every row has ``wider`` real ones: there are that many rows
        similarities = np.matmul(vectors[found], vectors[rows, :, None])[..., 0]
        best[rows] = np.partition(_encode(similarities, found), wider - pool, axis=1)[:, wider - pool :]

    # Gathering the candidates' vectors waits on memory, not on arithmetic: numpy lets go
    # of the GIL meanwhile, so threads gather side by side.
    with ThreadPoolExecutor(usable_cores()) as threads:
        list(threads.map(rescore, range(0, len(vectors), RESCORE_ROWS)))
    return best


def reduced(vectors, dimensions):
    """``vectors`` projected on the ``dimensions`` directions that keep the most of their
    dot products with each other (leading eigenvectors of a sample's second moments)."""
    sample = vectors[:: max(len(vectors) // DIRECTIONS_SAMPLE, 1)]
    _, directions = np.linalg.eigh(sample.T @ sample)  # ascending eigenvalues
    leading = np.ascontiguousarray(directions[:, ::-1][:, :dimensions], dtype=np.float32)
    return vectors @ leading


def _merge(best, worst, first, rows, keys):
    """Merge candidate ``keys`` into the lists of rows ``first + rows`` (``rows`` small
    numbers in any order, repeats allowed)."""
    if len(rows) == 0:
        return
    # A stable sort of 16-bit numbers is a radix sort.
    order = np.argsort(rows.astype(np.uint16) if rows.max() < 2**16 else rows, kind="stable")
    rows, keys = rows[order], keys[order]
    firsts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    counts = np.diff(np.r_[firsts, len(rows)])
    slots = np.arange(len(rows)) - np.repeat(firsts, counts)
    offered = np.full((len(firsts), counts.max()), _EMPTY, dtype=np.int64)
    offered[np.repeat(np.arange(len(firsts)), counts), slots] = keys
    _merge_rows(best, worst, rows[firsts] + first, offered)


def _merge_rows(best, worst, rows, offered):
    """Keep the best of ``best[rows]`` and ``offered`` (one row of keys per row)."""
    pool = best.shape[1]
    merged = np.concatenate([best[rows], offered], axis=1)
    merged.partition(merged.shape[1] - pool, axis=1)
    merged = merged[:, -pool:]
    best[rows] = merged
    lowest = merged.min(axis=1)
    worst[rows] = np.where(lowest == _EMPTY, -np.inf, _decode(lowest)[1])


def _encode(similarities, columns):
    """int64 keys ordered like (similarity, -column): float32 bits made to sort as
    integers in the high half, the complement of the column in the low half."""
    bits = np.asarray(similarities, dtype=np.float32).view(np.int32).astype(np.int64)
    bits ^= (bits >> 31) & 0x7FFFFFFF
    return (bits << 32) | (_LOW_32 - np.asarray(columns, dtype=np.int64))


def _decode(keys):
    """(columns int64, similarities float32) of keys; -1 and -inf for empty slots."""
    empty = keys == _EMPTY
    columns = _LOW_32 - (keys & _LOW_32)
    bits = keys >> 32
    bits ^= (bits >> 31) & 0x7FFFFFFF
    similarities = bits.astype(np.int32).view(np.float32)
    return np.where(empty, -1, columns), np.where(empty, np.float32(-np.inf), similarities)


def of_every_item(vectors, built_index, width, search_k, rerank=None, pool_factor=2) -> np.ndarray:
    """The neighbour lists of a build: by products of the vectors
    (:func:`nearest_neighbour_lists`) up to EXACT_MAX_ITEMS items, else from the Annoy
    index that ``built_index()`` returns (:func:`annoy_neighbour_lists`; it is only
    called then, so the index can be built meanwhile)."""
    if len(vectors) <= EXACT_MAX_ITEMS:
        return nearest_neighbour_lists(vectors, width, rerank=rerank, pool_factor=pool_factor)
    return annoy_neighbour_lists(built_index(), len(vectors), width, search_k, rerank, pool_factor)


def annoy_neighbour_lists(index, count, width, search_k, rerank=None, pool_factor=2, block=1024):
    """For each item of an Annoy ``index``, its nearest other items as Annoy finds them
    with ``search_k`` (approximate), in the same form and with the same ``rerank`` as
    :func:`nearest_neighbour_lists` (int32 rows, -1 where there are fewer)."""
    width = min(width, max(count - 1, 0))
    # A re-ranked list is cut from a wider pool of candidates.
    pool = min(width * pool_factor, max(count - 1, 0)) if rerank else width
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
