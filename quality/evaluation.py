"""Measuring visual search: how often the neighbours are the right kind of product, and
how closely the Annoy index follows exact search.

The benchmarks in bench/ and the quality tests both call these functions, so a number in
a benchmark report and a threshold in a test always mean the same thing.

Protocols:

- Catalogue (leave-one-out): every product of a labelled sample is a query; its ``k``
  nearest other products by exact cosine on search vectors are its results. P@k is the
  share of results of the same article type (and, stricter, the same type and colour).
- Shopper photos: real photos, uploaded as a shopper would, are queries against the
  catalogue sample. A result is right when its article type is one a shopper means by
  the photo's label (``PHOTO_LABEL_TYPES``).
- Index: the share of Annoy's first ``k`` results that are as near as exact search's
  ``k``-th result (ties between identical photos count as found).
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catalog.importing.styles import read_styles
from recommender import annoy_index
from recommender.active_model import embed_photo_files
from recommender.embedding.protocols import PHOTO_LABEL_TYPES, TOP_K, nearest_rows, shopper_photo_rows
from recommender.vector_store import search_vectors

EVALUATION_BATCH_SIZE = 64
DEFAULT_COLOUR_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


@dataclass
class LabelledImages:
    """Images of a sample with their labels and vectors (one row per image).

    ``keys`` are product ids (catalogue) or photo names (shopper photos); ``labels`` maps
    a label name (``"article_type"``, ``"base_colour"``, ``"label"``...) to one value per
    image; ``cnn`` and ``colour`` are the embedder's and the colour signature's vectors.
    """

    keys: list
    labels: dict
    cnn: np.ndarray
    colour: np.ndarray

    def __len__(self):
        return len(self.keys)

    def search_vectors(self, colour_weight):
        return search_vectors(self.cnn, self.colour, colour_weight)

    def subset(self, mask):
        mask = np.asarray(mask)
        return LabelledImages(
            keys=[key for key, keep in zip(self.keys, mask) if keep],
            labels={name: values[mask] for name, values in self.labels.items()},
            cnn=self.cnn[mask],
            colour=self.colour[mask],
        )

    def save(self, path):
        """Keep computed vectors in an .npz file, to measure again without the CNN."""
        np.savez(
            path,
            keys=np.asarray(self.keys),
            cnn=self.cnn,
            colour=self.colour,
            **{f"label_{name}": values for name, values in self.labels.items()},
        )

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as data:
            labels = {name[len("label_") :]: data[name] for name in data.files if name.startswith("label_")}
            return cls(keys=data["keys"].tolist(), labels=labels, cnn=data["cnn"], colour=data["colour"])


def catalogue_sample_rows(folder):
    """(product id, image path, article type, base colour) of a styles.csv + images/ folder.

    styles.csv is read by the catalogue importer's reader (the raw file has bare commas
    in names); products without an image file are left out.
    """
    folder = Path(folder)
    styles = read_styles((folder / "styles.csv").read_bytes())
    rows = []
    for row in styles.rows:
        path = folder / "images" / f"{row.id}.jpg"
        if path.exists():
            rows.append((row.id, path, row.values.get("article_type", ""), row.values.get("base_colour", "")))
    return rows


def _labelled(keys, labels, cnn, colour, failed):
    keep = np.ones(len(keys), dtype=bool)
    keep[failed] = False
    return LabelledImages(
        keys=[key for key, kept in zip(keys, keep) if kept],
        labels={name: np.asarray(values)[keep] for name, values in labels.items()},
        cnn=cnn,
        colour=colour,
    )


CATALOGUE_LABELS = ("article_type", "base_colour", "gender", "sub_category", "usage")


def embed_catalogue_sample(folder, embedder=None, progress=None):
    """Vectors and labels (``CATALOGUE_LABELS``) of every product of a catalogue folder."""
    rows = catalogue_sample_rows(folder)
    cnn, colour, failed = embed_photo_files([row[1] for row in rows], embedder, progress=progress)
    values = {row.id: row.values for row in read_styles((Path(folder) / "styles.csv").read_bytes()).rows}
    labels = {name: [values[row[0]].get(name, "") or "" for row in rows] for name in CATALOGUE_LABELS}
    return _labelled([row[0] for row in rows], labels, cnn, colour, failed)


def embed_shopper_photos(folder, embedder=None, include_kids=False, progress=None):
    """Vectors, label and "kids" flag of the usable shopper photos of a folder."""
    rows = shopper_photo_rows(folder, include_kids=include_kids)
    cnn, colour, failed = embed_photo_files([row[1] for row in rows], embedder, progress=progress)
    labels = {"label": [row[2] for row in rows], "kids": [row[3] for row in rows]}
    return _labelled([row[0] for row in rows], labels, cnn, colour, failed)


def cached_sample(path, compute):
    """A LabelledImages from the .npz file at ``path`` if there is one, else ``compute()``
    (saved to ``path`` when given). Returns ``(sample, seconds spent computing)``.

    The file is not checked against the embedder or the colour signature: delete it after
    changing either.
    """
    path = Path(path) if path else None
    if path and path.exists():
        return LabelledImages.load(path), 0.0
    started = time.perf_counter()
    sample = compute()
    seconds = time.perf_counter() - started
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        sample.save(path)
    return sample, seconds


def leave_one_out_precision(sample, colour_weight, k=TOP_K):
    """P@k of the catalogue protocol for one colour weight.

    Returns ``{"article_type": ..., "article_type_and_colour": ...}``.
    """
    vectors = sample.search_vectors(colour_weight)
    neighbours = nearest_rows(vectors, vectors, k, exclude=np.arange(len(vectors)))
    types = sample.labels["article_type"]
    colours = sample.labels["base_colour"]
    same_type = types[neighbours] == types[:, None]
    same_colour = colours[neighbours] == colours[:, None]
    return {
        "article_type": float(same_type.mean()),
        "article_type_and_colour": float((same_type & same_colour).mean()),
    }


def colour_weight_sweep(sample, weights=DEFAULT_COLOUR_WEIGHTS, k=TOP_K):
    """Leave-one-out P@k for each colour weight: a list of rows, one per weight."""
    return [{"colour_weight": weight, **leave_one_out_precision(sample, weight, k)} for weight in weights]


def choose_colour_weight(sweep, min_type=0.70, min_type_and_colour=0.27):
    """The weight with the best type+colour P@k among those meeting both floors
    (``min_type`` for the article type, ``min_type_and_colour`` for type and colour);
    None when no weight meets both."""
    meeting = [
        row
        for row in sweep
        if row["article_type"] >= min_type and row["article_type_and_colour"] >= min_type_and_colour
    ]
    if not meeting:
        return None
    best = max(meeting, key=lambda row: (row["article_type_and_colour"], row["article_type"]))
    return best["colour_weight"]


def shopper_photo_precision(photos, catalogue, colour_weight, k=TOP_K):
    """P@k "right kind" of shopper photos searched against a catalogue sample.

    Returns ``{"overall": ..., "queries": n, "per_label": {label: {"p_at_k", "queries"}}}``.
    """
    queries = photos.search_vectors(colour_weight)
    neighbours = nearest_rows(queries, catalogue.search_vectors(colour_weight), k)
    found_types = catalogue.labels["article_type"][neighbours]
    labels = photos.labels["label"]
    right = np.array([np.isin(found, PHOTO_LABEL_TYPES[label]) for found, label in zip(found_types, labels)])
    per_label = {
        label: {"p_at_k": float(right[labels == label].mean()), "queries": int((labels == label).sum())}
        for label in sorted(set(labels.tolist()))
    }
    return {"overall": float(right.mean()), "queries": len(labels), "per_label": per_label}


def scratch_index(folder, vectors, n_trees, build_id=1):
    """Build an index of ``vectors`` with the shop's own build code in ``folder`` and load it.

    Returns ``(loaded index, build seconds, file bytes)``. Item i of the index is row i.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ann_name = annoy_index.write_build(
        build_id, vectors, np.arange(len(vectors)), n_trees, {"model_name": "evaluation"}, folder=folder
    )
    seconds = time.perf_counter() - started
    loaded = annoy_index.read_build(folder)
    return loaded, seconds, (folder / ann_name).stat().st_size


def exact_kth_similarity(vectors, queries, k=TOP_K, block=256):
    """Cosine similarity of each query row's ``k``-th nearest other row, by exact search."""
    queries = np.asarray(queries)
    kth = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), block):
        rows = queries[start : start + block]
        similarity = vectors[rows] @ vectors.T
        similarity[np.arange(len(rows)), rows] = -np.inf
        kth[start : start + len(rows)] = -np.partition(-similarity, k - 1, axis=1)[:, k - 1]
    return kth


def index_recall(loaded, vectors, queries, kth_similarity, search_k, k=TOP_K, count=None):
    """Recall@k of a loaded index against exact search.

    Each query row is searched by its vector for ``count`` (default ``k + 1``) neighbours,
    itself left out, as the product page does; a result counts as found when it is as near
    as the exact ``k``-th neighbour (``kth_similarity`` from :func:`exact_kth_similarity`),
    so ties between identical photos are not counted as misses.
    """
    count = count or k + 1
    found_share = np.empty(len(queries))
    for position, row in enumerate(queries):
        hits = loaded.neighbours_of_vector(vectors[row], count, search_k=search_k)
        found = [item for item, _ in hits if item != row][:k]
        similarity = vectors[found] @ vectors[row] if found else np.empty(0)
        found_share[position] = np.sum(similarity >= kth_similarity[position] - 1e-5) / k
    return float(found_share.mean())


def item_lookup_ms(loaded, items, count, search_k, passes=2):
    """Milliseconds per Annoy ``get_nns_by_item`` for ``count`` neighbours: the index's own
    time, from the fastest of ``passes`` runs over ``items`` (the first pages the file in)."""
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for item in items:
            loaded.annoy.get_nns_by_item(int(item), count, search_k=search_k)
        best = min(best, time.perf_counter() - started)
    return 1000 * best / len(items)


def stored_neighbours_recall(loaded, vectors, queries, kth_similarity, k=TOP_K):
    """Recall@k of the neighbour lists stored with a build (what product pages read)."""
    found_share = np.empty(len(queries))
    for position, row in enumerate(queries):
        found = loaded.stored_neighbours(int(row))[:k]
        similarity = vectors[found] @ vectors[row] if found else np.empty(0)
        found_share[position] = np.sum(similarity >= kth_similarity[position] - 1e-5) / k
    return float(found_share.mean())


def stored_lookup_ms(loaded, items, passes=2):
    """Milliseconds to read one product's stored neighbour list, fastest of ``passes``."""
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for item in items:
            loaded.stored_neighbours(int(item))
        best = min(best, time.perf_counter() - started)
    return 1000 * best / len(items)


def synthetic_catalogue(sample, size, noise=0.5, seed=0):
    """CNN and colour vectors for a catalogue of ``size`` products grown from a real sample.

    The sample's own vectors come first; each extra product is a copy of a random real
    one with Gaussian noise of relative length ``noise`` on both parts, so the index holds
    as many items as the full catalogue, spread where real products lie.
    """
    rng = np.random.default_rng(seed)
    extra = size - len(sample)
    if extra <= 0:
        return sample.cnn[:size], sample.colour[:size]
    source = rng.integers(0, len(sample), extra)

    def noisy(vectors):
        base = vectors[source]
        scale = np.linalg.norm(base, axis=1, keepdims=True) * noise / np.sqrt(vectors.shape[1])
        return (base + rng.normal(size=base.shape).astype(np.float32) * scale).astype(np.float32)

    # Colour signatures are square roots of histograms: keep them non-negative.
    return (
        np.concatenate([sample.cnn, noisy(sample.cnn)]),
        np.concatenate([sample.colour, np.abs(noisy(sample.colour))]),
    )
