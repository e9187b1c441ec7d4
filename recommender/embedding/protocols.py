"""How visual search quality is measured, in plain numpy (no Django): the training
command, the benchmarks and the quality tests all use these, so a number means the same
everywhere.

- Catalogue: held-out products are queries against the whole catalogue (never
  themselves); P@k is the share of results of the same article type, and, stricter, of
  the same type and base colour.
- Shopper photos: real photos of garments are queries; a result is right when its
  article type is one a shopper means by the photo's label (``PHOTO_LABEL_TYPES``).
"""

import csv
import hashlib
from pathlib import Path

import numpy as np

TOP_K = 5
# A shopper photo's label -> catalogue article types a shopper would accept for it.
# Labels without a catalogue counterpart are left out: "Body" (baby bodysuits, all photos
# of children). Blazers are rare in the catalogue, so jackets count for a blazer photo.
PHOTO_LABEL_TYPES = {
    "T-Shirt": ("Tshirts", "Lounge Tshirts"),
    "Polo": ("Tshirts",),
    "Longsleeve": ("Tshirts", "Sweatshirts", "Tops", "Sweaters"),
    "Shirt": ("Shirts",),
    "Top": ("Tops", "Shirts", "Tunics"),
    "Blouse": ("Tops", "Shirts", "Tunics"),
    "Undershirt": ("Innerwear Vests", "Tshirts", "Camisoles"),
    "Hoodie": ("Sweatshirts", "Jackets"),
    "Outwear": ("Jackets", "Sweaters", "Sweatshirts", "Rain Jacket", "Nehru Jackets", "Blazers"),
    "Blazer": ("Blazers", "Jackets", "Nehru Jackets"),
    "Dress": ("Dresses",),
    "Skirt": ("Skirts",),
    "Pants": ("Trousers", "Jeans", "Track Pants", "Lounge Pants", "Jeggings", "Leggings", "Capris"),
    "Shorts": ("Shorts", "Lounge Shorts"),
    "Shoes": (
        "Casual Shoes",
        "Sports Shoes",
        "Formal Shoes",
        "Heels",
        "Flats",
        "Sandals",
        "Flip Flops",
        "Sports Sandals",
        "Booties",
    ),
    "Hat": ("Caps", "Hat"),
}
# A label's floor only means something with enough catalogue products of its kind.
MIN_PRODUCTS_FOR_A_FLOOR = 20


def held_out(key, parts=5) -> bool:
    """Whether an item (product id, photo name) is in the held-out part: one in ``parts``,
    by a salted hash, so the split never lines up with how a sample was drawn."""
    return int(hashlib.sha256(f"held-out:{key}".encode()).hexdigest(), 16) % parts == 0


def nearest_rows(queries, vectors, k=TOP_K, exclude=None, block=512):
    """Row numbers of the ``k`` nearest ``vectors`` (cosine) of each query, nearest first.

    ``exclude`` gives, per query, a row of ``vectors`` that is never its neighbour (the
    query itself when queries are catalogue rows), or None.
    """
    result = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), block):
        similarity = queries[start : start + block] @ vectors.T
        if exclude is not None:
            rows = np.arange(similarity.shape[0])
            similarity[rows, np.asarray(exclude)[start : start + block]] = -np.inf
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
        result[start : start + len(similarity)] = np.take_along_axis(top, order, axis=1)
    return result


def catalogue_precision(neighbours, query_rows, types, colours) -> dict:
    """P@k of the catalogue protocol from each query row's neighbour rows."""
    types, colours = np.asarray(types), np.asarray(colours)
    same_type = types[neighbours] == types[query_rows][:, None]
    same_colour = colours[neighbours] == colours[query_rows][:, None]
    return {
        "article_type": float(same_type.mean()) if len(query_rows) else 0.0,
        "article_type_and_colour": float((same_type & same_colour).mean()) if len(query_rows) else 0.0,
        "queries": len(query_rows),
    }


def shopper_photo_precision(found_types, labels, catalogue_types=None) -> dict:
    """P@k "right kind" of shopper photos from the article types found for each photo.

    Returns ``{"overall", "queries", "per_label": {label: {"p_at_k", "queries",
    "catalogue_products"}}}``; ``catalogue_products`` (how many products of that kind the
    catalogue has) is filled when ``catalogue_types`` is given.
    """
    labels = np.asarray(labels)
    right = np.array([np.isin(found, PHOTO_LABEL_TYPES[label]) for found, label in zip(found_types, labels)])
    per_label = {}
    for label in sorted(set(labels.tolist())):
        row = {"p_at_k": float(right[labels == label].mean()), "queries": int((labels == label).sum())}
        if catalogue_types is not None:
            row["catalogue_products"] = int(np.isin(catalogue_types, PHOTO_LABEL_TYPES[label]).sum())
        per_label[label] = row
    return {
        "overall": float(right.mean()) if len(labels) else 0.0,
        "queries": len(labels),
        "per_label": per_label,
    }


def shopper_photo_rows(folder, include_kids=False) -> list[tuple[str, Path, str, bool]]:
    """(photo name, image path, label, kids) of a folder of labelled shopper photos
    (``images.csv`` with image, label and kids columns, and ``images/<image>.jpg``) whose
    label has catalogue counterparts; photos of children's clothes only on request."""
    folder = Path(folder)
    rows = []
    with open(folder / "images.csv", newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            if row["label"] not in PHOTO_LABEL_TYPES:
                continue
            kids = row.get("kids", "").strip().lower() == "true"
            if kids and not include_kids:
                continue
            path = folder / "images" / f"{row['image']}.jpg"
            if path.exists():
                rows.append((row["image"], path, row["label"], kids))
    return rows
