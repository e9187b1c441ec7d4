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

import numpy as np

from . import search_files
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

    @property
    def reranks(self) -> bool:
        """Whether searches in this space re-rank their candidates (a trained head)."""
        return self.head is not None

    def type_numbers(self, article_types) -> np.ndarray:
        """The head's number of each article type (-1 unknown, or no head)."""
        index = self.head.type_index if self.head is not None else {}
        return np.array([index.get(t, -1) for t in article_types], dtype=np.int64)

    def rerank(self, query, candidates) -> list:
        """``candidates`` [(product, cosine similarity)] best first for one query vector."""
        if not candidates:
            return []
        products = [product for product, _ in candidates]
        order = self.rerank_rows(
            np.atleast_2d(query),
            np.arange(len(products))[None],
            np.array([[similarity for _, similarity in candidates]], dtype=np.float32),
            self.type_numbers([product.article_type for product in products])[None],
        )[0]
        return [products[i] for i in order]

    def rerank_rows(self, query_rows, candidate_rows, similarities, candidate_types) -> np.ndarray:
        """Candidate row numbers best first, one row per query row: by cosine, plus, in a
        trained space, rerank weight * log p(candidate's article type | query).
        ``candidate_types`` are :meth:`type_numbers`; a -inf similarity stays last."""
        score = np.asarray(similarities, dtype=np.float64)
        if self.head is not None:
            log_probs = self.head.log_probs(query_rows)
            floor = log_probs.min(axis=1, keepdims=True)
            known = np.take_along_axis(log_probs, np.maximum(candidate_types, 0), axis=1)
            score = score + self.head.rerank_weight * np.where(candidate_types >= 0, known, floor)
        return np.take_along_axis(candidate_rows, np.argsort(-score, axis=1, kind="stable"), axis=1)


def default_space(backbone: str) -> SearchSpace:
    return SearchSpace(name=backbone, backbone=backbone)


def version_space(version: ModelVersion) -> SearchSpace:
    """The space of a trained version, its head read once per process from this host's
    copy of the stored weights (a version's file never changes)."""
    with _spaces_lock:
        if version.pk not in _spaces:
            _spaces[version.pk] = SearchSpace(
                name=version.space_name,
                backbone=version.backbone,
                version_id=version.pk,
                head=HeadWeights.load(search_files.version_weights_copy(version.weights_file)),
            )
        return _spaces[version.pk]


def active_space(backbone: str) -> SearchSpace:
    """The space of the active version for this backbone, or the default space."""
    version = ModelVersion.objects.filter(is_active=True, backbone=backbone).first()
    return version_space(version) if version else default_space(backbone)


def space_of_build(metadata: dict, backbone: str) -> SearchSpace:
    """The space an index build was made in (from its recorded metadata)."""
    version_id = metadata.get("version_id")
    if version_id is None:
        return default_space(backbone)
    if version_id in _spaces:  # no query on the hot path once the version is known
        return _spaces[version_id]
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None or not version.weights_file:
        raise LookupError(f"the index was built with model version {version_id}, which is gone")
    return version_space(version)


_spaces = {}
_spaces_lock = threading.Lock()


def forget_loaded_spaces() -> None:
    """Drop the process's cached versions and heads (tests, where ids are reused)."""
    with _spaces_lock:
        _spaces.clear()
