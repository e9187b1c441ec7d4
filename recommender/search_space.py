"""The vector space searches run in: which search vectors the stored backbone features
become, and how the nearest candidates are re-ranked.

Without an active trained version the space is the backbone's CNN features mixed with the
colour signature (settings.COLOUR_WEIGHT). With one, the version's head (numpy, no
TensorFlow) turns the same stored features into its search vectors and re-ranks
candidates by the article type it predicts for the query. An index build records its
space, so queries against a build are always made in that build's space.
"""

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from .embedding.head import HeadWeights, head_inputs
from .models import ModelVersion
from .vector_store import search_vectors


@dataclass(frozen=True)
class SearchSpace:
    name: str
    backbone: str
    version_id: int | None = None
    head: HeadWeights | None = None

    def vectors(self, cnn, colour) -> np.ndarray:
        """Search vectors (one row each) for backbone CNN and colour vectors (one row each)."""
        if self.head is not None:
            return self.head.search_vectors(head_inputs(cnn, colour))
        return search_vectors(cnn, colour)

    def as_metadata(self) -> dict:
        """What an index build records to find this space again."""
        return {"space": self.name, "version_id": self.version_id}

    def rerank(self, query, candidates) -> list:
        """``candidates`` [(product, cosine similarity)] best first for a query vector:
        cosine + rerank weight * log p(candidate's article type | query)."""
        if self.head is None or not candidates:
            return [product for product, _ in sorted(candidates, key=lambda pair: -pair[1])]
        log_probs = self.head.log_probs(query)[0]
        floor = float(log_probs.min())
        weight = self.head.rerank_weight

        def score(pair):
            product, similarity = pair
            index = self.head.type_index.get(product.article_type)
            return similarity + weight * (log_probs[index] if index is not None else floor)

        return [product for product, _ in sorted(candidates, key=score, reverse=True)]

    def rerank_rows(self, query_rows, candidate_rows, similarities, candidate_types) -> np.ndarray:
        """Batch form of :meth:`rerank` for index builds: candidate row numbers re-ordered
        per query row. ``candidate_types`` are article type numbers of the head (-1 unknown)."""
        if self.head is None:
            return candidate_rows
        log_probs = self.head.log_probs(query_rows)
        floor = log_probs.min(axis=1, keepdims=True)
        safe = np.maximum(candidate_types, 0)
        bonus = np.where(candidate_types >= 0, np.take_along_axis(log_probs, safe, axis=1), floor)
        order = np.argsort(-(similarities + self.head.rerank_weight * bonus), axis=1, kind="stable")
        return np.take_along_axis(candidate_rows, order, axis=1)


def default_space(backbone: str) -> SearchSpace:
    return SearchSpace(name=backbone, backbone=backbone)


def version_space(version: ModelVersion) -> SearchSpace:
    """The space of a trained version (its head loaded once per process)."""
    return SearchSpace(
        name=version.space_name,
        backbone=version.backbone,
        version_id=version.pk,
        head=load_head(version_weights_path(version.weights_file)),
    )


def active_space(backbone: str) -> SearchSpace:
    """The space of the active version for this backbone, or the default space."""
    version = ModelVersion.objects.filter(is_active=True, backbone=backbone).first()
    return version_space(version) if version else default_space(backbone)


def space_of_build(metadata: dict, backbone: str) -> SearchSpace:
    """The space an index build was made in (from its recorded metadata)."""
    version_id = metadata.get("version_id")
    if version_id is None:
        return default_space(backbone)
    if version_id not in _build_spaces:  # a version never changes: look it up once
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None or not version.weights_file:
            raise LookupError(f"the index was built with model version {version_id}, which is gone")
        _build_spaces[version_id] = version_space(version)
    return _build_spaces[version_id]


_build_spaces = {}


def version_weights_path(name: str) -> Path:
    return Path(settings.MODEL_VERSIONS_DIR) / name


_heads = {}
_heads_lock = threading.Lock()


def load_head(path: Path) -> HeadWeights:
    """A version's head, read once per process (a version's file never changes)."""
    key = str(path)
    with _heads_lock:
        if key not in _heads:
            _heads[key] = HeadWeights.load(path)
        return _heads[key]


def forget_loaded_spaces() -> None:
    """Drop the process's cached versions and heads (tests, where ids are reused)."""
    with _heads_lock:
        _heads.clear()
        _build_spaces.clear()
