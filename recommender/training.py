"""Training the recommender on the shop's own catalogue (``manage.py train_recommender``).

The stored backbone features of every product with a photo are the inputs (no CNN pass,
except for products not embedded yet and for shopper photos). A fifth of the products,
chosen by a hash of their id, is held out: the new head is trained on the rest, then the
new and the active version are measured side by side on the held-out products (and on
half of the labelled shopper photos, when a folder of them is given; the other half
trains). The result is stored as a ModelVersion and activated only when it is better.
"""

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from catalog.models import Product

from . import active_model, refresh, search_files
from .embedding import protocols
from .embedding.head import HeadConfig, TrainingSet, head_inputs, train_head
from .models import ModelVersion
from .search_space import SearchSpace, active_space, version_space
from .vector_store import current_embeddings, current_model_name, stored_features
from .versions import activate_version

MIN_TRAINING_PRODUCTS = 40
MIN_TYPES = 2
# Labels the head learns besides the article type (Product field per task).
LABEL_FIELDS = {
    "article_type": "article_type",
    "base_colour": "base_colour",
    "gender": "gender",
    "sub_category": "sub_category",
    "usage": "usage",
}
# Searches re-rank this many nearest candidates (what products_near asks the index for
# five results); the evaluation does the same.
EVALUATION_POOL = 40


class TrainingRefused(Exception):
    """The catalogue cannot be trained on as it is; the message says why."""


@dataclass
class Catalogue:
    """The stored features and labels of every embedded product."""

    ids: np.ndarray
    cnn: np.ndarray
    colour: np.ndarray
    labels: dict
    held_out: np.ndarray

    def vectors(self, space: SearchSpace) -> np.ndarray:
        return space.vectors(self.cnn, self.colour)


@dataclass
class ShopperPhotos:
    names: list
    labels: np.ndarray
    cnn: np.ndarray
    colour: np.ndarray
    held_out: np.ndarray
    source: dict = field(default_factory=dict)


@dataclass
class TrainingReport:
    version: ModelVersion
    activated: bool
    resumed_from_epoch: int
    seconds: float

    @property
    def metrics(self) -> dict:
        return self.version.metrics


def load_catalogue(*, shuffle_labels: bool = False, seed: int = 0) -> Catalogue:
    """Features and labels of the embedded catalogue, embedding products that lack vectors."""
    pending = refresh.products_needing_embedding()
    if pending:
        refresh.embed_products(pending)
    ids, cnn, colour = stored_features(current_embeddings(current_model_name()))
    fields = list(LABEL_FIELDS.values())
    by_id = {
        row[0]: row[1:] for row in Product.objects.filter(pk__in=ids.tolist()).values_list("pk", *fields)
    }
    keep = np.array([int(pk) in by_id for pk in ids], dtype=bool)
    ids, cnn, colour = ids[keep], cnn[keep], colour[keep]
    labels = {
        task: np.array([by_id[int(pk)][position] or "" for pk in ids], dtype=str)
        for position, task in enumerate(LABEL_FIELDS)
    }
    held = np.array([protocols.held_out(int(pk)) for pk in ids], dtype=bool)
    if shuffle_labels:
        # A sanity check: a head trained on shuffled labels must never be activated.
        rng = np.random.default_rng(seed)
        train_rows = np.where(~held)[0]
        for task in labels:
            labels[task][train_rows] = labels[task][rng.permutation(train_rows)]
    return Catalogue(ids=ids, cnn=cnn, colour=colour, labels=labels, held_out=held)


def load_shopper_photos(folder, progress: Callable[[str], object] | None = None) -> ShopperPhotos:
    """Embed a folder of labelled shopper photos (images.csv + images/); half of them
    (by a hash of the name) train, the other half only measure."""
    rows = protocols.shopper_photo_rows(folder)
    if not rows:
        raise TrainingRefused(f"{folder} holds no labelled shopper photos (images.csv + images/<name>.jpg)")
    if progress:
        progress(f"Embedding {len(rows)} shopper photos...")
    cnn, colour, failed = active_model.embed_photo_files([row[1] for row in rows])
    unreadable = set(failed)
    kept = [row for position, row in enumerate(rows) if position not in unreadable]
    licence_file = Path(folder) / "LICENSE"
    licence = (
        licence_file.read_text(errors="replace").strip().splitlines()[0] if licence_file.exists() else ""
    )
    return ShopperPhotos(
        names=[row[0] for row in kept],
        labels=np.array([row[2] for row in kept]),
        cnn=cnn,
        colour=colour,
        held_out=np.array([protocols.held_out(row[0], parts=2) for row in kept], dtype=bool),
        source={"name": Path(folder).name, "photos": len(kept), "licence": licence or "unknown"},
    )


def training_set(catalogue: Catalogue, photos: ShopperPhotos | None, config: HeadConfig) -> TrainingSet:
    """The head's training examples: the catalogue's training products, then the
    training half of the shopper photos (article types only)."""
    train = ~catalogue.held_out
    classes, labels = {}, {}
    for task in config.task_weights:
        values = _task_values(catalogue.labels, task)
        classes[task] = sorted({value for value in values[train] if value})
        position = {name: i for i, name in enumerate(classes[task])}
        labels[task] = np.array([position.get(value, -1) for value in values[train]], dtype=np.int64)
    types = classes["article_type"]
    type_position = {name: i for i, name in enumerate(types)}
    type_targets = np.zeros((train.sum(), len(types)), dtype=np.float32)
    type_targets[np.arange(train.sum()), np.maximum(labels["article_type"], 0)] = labels["article_type"] >= 0
    inputs = head_inputs(catalogue.cnn[train], catalogue.colour[train])
    weights = np.ones(train.sum(), dtype=np.float32)
    if photos is not None:
        rows = [i for i in np.where(~photos.held_out)[0] if _photo_types(photos.labels[i], type_position)]
        photo_targets = np.zeros((len(rows), len(types)), dtype=np.float32)
        for out, i in enumerate(rows):
            photo_targets[out, _photo_types(photos.labels[i], type_position)] = 1.0
        inputs = np.concatenate([inputs, head_inputs(photos.cnn[rows], photos.colour[rows])])
        type_targets = np.concatenate([type_targets, photo_targets])
        weights = np.concatenate([weights, np.full(len(rows), config.photo_weight, dtype=np.float32)])
        for task in labels:
            labels[task] = np.concatenate([labels[task], np.full(len(rows), -1, dtype=np.int64)])
    return TrainingSet(inputs, labels, classes, type_targets, weights)


def _task_values(labels, task):
    if task == "type_colour":
        return np.char.add(np.char.add(labels["article_type"], "|"), labels["base_colour"])
    return labels[task]


def _photo_types(label, type_position):
    return [type_position[t] for t in protocols.PHOTO_LABEL_TYPES.get(str(label), ()) if t in type_position]


def check_trainable(catalogue: Catalogue) -> None:
    """Refuse, with a reason, a catalogue too small or too uniform to learn from."""
    train = ~catalogue.held_out
    if train.sum() < MIN_TRAINING_PRODUCTS:
        raise TrainingRefused(
            f"Only {int(train.sum())} products with photos and vectors can be trained on; at least "
            f"{MIN_TRAINING_PRODUCTS} are needed. Import more products (and run embed_catalog)."
        )
    types, counts = np.unique(catalogue.labels["article_type"][train], return_counts=True)
    usable = [t for t, n in zip(types, counts) if t and n >= 2]
    if len(usable) < MIN_TYPES:
        raise TrainingRefused(
            "The catalogue is too uniform to train on: it needs at least two article types with "
            f"two or more products each (found: {', '.join(map(str, types)) or 'none'})."
        )
    if not catalogue.held_out.any():
        raise TrainingRefused("No product fell in the held-out fifth; the catalogue is too small to measure.")


def evaluate(
    space: SearchSpace, catalogue: Catalogue, photos: ShopperPhotos | None, k=protocols.TOP_K
) -> dict:
    """The catalogue protocol (held-out products against the whole catalogue) and, with
    photos, the shopper-photo protocol (their held-out half), ranked as searches rank."""
    vectors = catalogue.vectors(space)
    types = catalogue.labels["article_type"]
    queries = np.where(catalogue.held_out)[0]
    found = _ranked_neighbours(space, vectors[queries], vectors, types, k, exclude=queries)
    result = {
        "catalogue": protocols.catalogue_precision(found, queries, types, catalogue.labels["base_colour"])
    }
    if photos is not None:
        rows = np.where(photos.held_out)[0]
        photo_vectors = space.vectors(photos.cnn[rows], photos.colour[rows])
        neighbours = _ranked_neighbours(space, photo_vectors, vectors, types, k)
        result["shopper_photos"] = protocols.shopper_photo_precision(
            types[neighbours], photos.labels[rows], types
        )
    return result


def _ranked_neighbours(space, queries, vectors, types, k, exclude=None):
    pool = min(EVALUATION_POOL, len(vectors) - 1) if space.reranks else k
    candidates = protocols.nearest_rows(queries, vectors, pool, exclude=exclude)
    if not space.reranks:
        return candidates
    similarities = np.take_along_axis(queries @ vectors.T, candidates, axis=1)
    return space.rerank_rows(queries, candidates, similarities, space.type_numbers(types)[candidates])[:, :k]


def score(metrics: dict) -> float:
    """One number to compare versions: catalogue type and type+colour P@k, plus the
    shopper-photo P@k when it was measured."""
    catalogue = metrics["catalogue"]
    total = catalogue["article_type"] + catalogue["article_type_and_colour"]
    if "shopper_photos" in metrics:
        total += metrics["shopper_photos"]["overall"]
    return total


def train_recommender(
    *,
    config: HeadConfig | None = None,
    shopper_photos=None,
    activate: bool = True,
    shuffle_labels: bool = False,
    progress: Callable[[str], object] | None = None,
    on_epoch: Callable[[int, dict], object] | None = None,
) -> TrainingReport:
    """Train, measure, store and (when better) activate a new version; see the module doc.

    Raises TrainingRefused with a clear message when the catalogue cannot be trained on.
    An interrupted run with the same data and settings resumes from its last epoch.
    """
    say = progress or (lambda message: None)
    config = config or HeadConfig()
    started = time.perf_counter()
    catalogue = load_catalogue(shuffle_labels=shuffle_labels, seed=config.seed)
    check_trainable(catalogue)
    photos = load_shopper_photos(shopper_photos, say) if shopper_photos else None
    data = training_set(catalogue, photos, config)
    backbone = current_model_name()
    version = ModelVersion.objects.create(
        backbone=backbone,
        training_products=int((~catalogue.held_out).sum()),
        held_out_products=int(catalogue.held_out.sum()),
        training_photos=len(data) - int((~catalogue.held_out).sum()),
        hyperparameters={**config.as_dict(), "shuffled_labels": shuffle_labels},
        data_sources=[{"name": "catalogue", "products": len(catalogue.ids)}]
        + ([photos.source] if photos else []),
    )
    checkpoints = _checkpoint_dir(catalogue, photos, config, shuffle_labels)
    try:
        say(
            f"Training on {len(data)} examples ({version.training_products} products), "
            f"{config.epochs} epochs..."
        )
        weights, resumed = train_head(data, config, checkpoint_dir=checkpoints, on_epoch=on_epoch)
        if resumed:
            say(f"Resumed an interrupted run from epoch {resumed}.")
            ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING).exclude(pk=version.pk).update(
                status=ModelVersion.Status.FAILED,
                error=f"interrupted; version {version.pk} resumed its training",
            )
        version.weights_file = search_files.store_version_weights(version.pk, weights.save)
        version.status = ModelVersion.Status.READY
        say("Measuring the new and the active version on the held-out products...")
        current = active_space(backbone)
        new_metrics = evaluate(version_space(version), catalogue, photos)
        old_metrics = evaluate(current, catalogue, photos)
        better = score(new_metrics) > score(old_metrics)
        version.metrics = {
            "new": new_metrics,
            "active": old_metrics,
            "active_name": current.name,
            "better": better,
        }
    except Exception as exc:
        version.status = ModelVersion.Status.FAILED
        version.error = str(exc)
        raise
    finally:
        version.duration_seconds = time.perf_counter() - started
        version.save()
    shutil.rmtree(checkpoints, ignore_errors=True)
    activated = bool(activate and better)
    if activated:
        activate_version(version)
        version.refresh_from_db()
        say("The new version is better: activated; rebuilding the index in its space...")
        refresh.rebuild_index()
    return TrainingReport(version, activated, resumed, time.perf_counter() - started)


def _checkpoint_dir(catalogue, photos, config, shuffle_labels) -> Path:
    """One folder per (data, settings): a rerun after an interruption finds its epochs."""
    digest = hashlib.sha256()
    digest.update(catalogue.ids.tobytes())
    digest.update(catalogue.held_out.tobytes())
    digest.update(json.dumps([config.as_dict(), shuffle_labels], sort_keys=True).encode())
    for task in LABEL_FIELDS:
        digest.update("\x00".join(catalogue.labels[task].tolist()).encode())
    if photos is not None:
        digest.update("\x00".join(photos.names).encode())
    return Path(settings.MODEL_VERSIONS_DIR) / "checkpoints" / digest.hexdigest()[:16]
