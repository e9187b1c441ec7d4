"""Nearest products to a search vector, among those a shopper can buy.

Queries go to the memory-mapped Annoy build, in the vector space it was built in
(:func:`serving_space`); vectors stored after that build (new or changed products) are
searched exactly and merged in. Without a usable build the search is exact over all
stored vectors in the active space while a rebuild is requested, so pages always answer.
A trained space re-ranks the nearest candidates by the article type it predicts.
Which catalogue facets shoppers may put on visual results is defined here once.
"""

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping

import numpy as np
from django.conf import settings
from django.db import connections
from django.db.models import Count, Max, QuerySet

from catalog.filters import ProductFilter
from catalog.models import Product

from . import annoy_index
from .queueing import request_index_rebuild
from .search_space import SearchSpace, active_space, space_of_build
from .vector_store import (
    current_embeddings,
    current_model_name,
    exact_neighbours,
    stored_vectors,
)

logger = logging.getLogger(__name__)

MAX_RESULTS = 50


# Catalogue facets a shopper can put on visual results (parameter names of catalog.filters,
# which also gives their product fields and labels).
RESULT_FILTERS = ("gender", "masterCategory", "articleType", "baseColour")


def result_filters(data: Mapping) -> dict[str, str]:
    """The non-empty result filters in request or form data, by parameter name."""
    return {param: data[param] for param in RESULT_FILTERS if data.get(param)}


def filter_products(queryset: QuerySet, filters: Mapping | None) -> QuerySet:
    """``queryset`` narrowed by result filters (parameter name -> value), as the catalogue's
    own FilterSet narrows the list page."""
    chosen = result_filters(filters or {})
    return ProductFilter(chosen, queryset=queryset).qs if chosen else queryset


_exact_cache = {"key": None, "data": None}


def serving_space() -> tuple[SearchSpace, "annoy_index.LoadedIndex | None"]:
    """The space queries are made in, and the index build to ask (None without a usable
    build: then the active space, searched exactly)."""
    backbone = current_model_name()
    try:
        index = annoy_index.current_index(backbone)
        return space_of_build(index.metadata, backbone), index
    except (annoy_index.IndexUnavailable, LookupError, OSError, ValueError) as exc:
        logger.info("Exact search: %s", exc)
        _schedule_rebuild_quietly()
        return active_space(backbone), None


def preload_index() -> None:
    """Load the current build now, for a web process at start (config/wsgi.py), so the
    first search does not wait for its copy; nothing happens when there is none yet."""
    try:
        serving_space()
    except Exception as exc:  # a server starts whatever state the search files are in
        logger.warning("The search index was not loaded at start: %s", exc)
    finally:
        # gunicorn --preload forks its workers after this: they must not share connections.
        connections.close_all()


def _all_vectors_cached(space):
    """All stored search vectors (only used while no index is usable), reloaded when
    vectors were added, changed or removed."""
    embeddings = current_embeddings(space.backbone)
    state = embeddings.aggregate(n=Count("pk"), last=Max("updated_at"), top=Max("pk"))
    key = (space.name, settings.COLOUR_WEIGHT, state["n"], state["last"], state["top"])
    if _exact_cache["key"] != key:
        _exact_cache.update(key=key, data=stored_vectors(embeddings, space))
    return _exact_cache["data"]


def _schedule_rebuild_quietly():
    try:
        request_index_rebuild()
    except Exception as exc:  # never let a page fail because the rebuild could not be asked for
        logger.warning("Could not request an index rebuild: %s", exc)


def nearest_products(space, index, vector: np.ndarray, count: int) -> list[tuple[int, float]]:
    """(product id, angular distance) of about ``count`` products nearest to a search
    vector of ``space``, from ``index`` (see :func:`serving_space`) or exactly."""
    if index is None:
        ids, vectors = _all_vectors_cached(space)
        return exact_neighbours(vector, ids, vectors, count) if len(ids) else []
    hits = index.neighbours_of_vector(vector, count)
    return merge_newer_vectors(space, index, vector, hits, count)


_newer = threading.local()


def newer_vectors(space, index: annoy_index.LoadedIndex) -> tuple[np.ndarray, np.ndarray]:
    """(product ids, search vectors) stored after the build was made.

    Read again at most every NEWER_VECTORS_SECONDS per thread: usually there are none,
    and asking on every product page was a query per page."""
    ids, vectors, _ = _newer_vectors_read(space, index)
    if len(ids):
        _schedule_rebuild_quietly()  # debounced; covers a rebuild request that was lost
    return ids, vectors


def search_results_version(space, index: annoy_index.LoadedIndex) -> str:
    """Changes whenever searches in ``space`` could answer differently, the catalogue
    aside: another build, or other vectors stored since it (for caching results)."""
    return f"{index.build_id}:{space.name}:{settings.COLOUR_WEIGHT}:{_newer_vectors_read(space, index)[2]}"


def _newer_vectors_read(space, index):
    key = (index.build_id, index.vectors_until, space.name, settings.COLOUR_WEIGHT)
    now = time.monotonic()
    if getattr(_newer, "key", None) != key or now - _newer.read_at >= settings.NEWER_VECTORS_SECONDS:
        newer = current_embeddings(index.model_name)
        if index.vectors_until is not None:
            newer = newer.filter(updated_at__gt=index.vectors_until)
        ids, vectors = stored_vectors(newer, space)
        # Ids and each vector's sum: a changed vector changes its sum, and summing is
        # cheap even when a large import has left every vector newer than the build.
        sums = vectors.sum(axis=1, dtype=np.float64)
        digest = hashlib.sha256(ids.tobytes() + sums.tobytes()).hexdigest()[:16]
        _newer.key, _newer.read_at, _newer.value = key, now, (ids, vectors, digest)
    return _newer.value


def merge_newer_vectors(space, index, vector, hits, count, newer=None):
    """``hits`` from the build with the vectors stored since searched exactly and merged
    in (a changed product's old position in the build is dropped)."""
    ids, vectors = newer_vectors(space, index) if newer is None else newer
    if len(ids) == 0:
        return hits
    changed = set(ids.tolist())
    merged = [hit for hit in hits if hit[0] not in changed] + exact_neighbours(vector, ids, vectors, count)
    merged.sort(key=lambda hit: hit[1])
    return merged[:count]


def product_vector(space, product_id: int) -> np.ndarray | None:
    """The search vector of a catalogue product in ``space``, or None without vectors."""
    embedding = current_embeddings(space.backbone).filter(product_id=product_id).first()
    if embedding is None:
        return None
    return space.vectors(embedding.cnn_vector, embedding.colour_vector)[0]


def buyable_in_order(ids: Iterable[int], exclude=(), filters=None) -> list[Product]:
    """Products for ids, in that order, keeping only active, in-stock, matching ones."""
    ids = list(ids)
    queryset = filter_products(
        Product.objects.available().filter(pk__in=[pk for pk in ids if pk not in exclude]), filters
    )
    by_id = {product.pk: product for product in queryset}
    return [by_id[pk] for pk in ids if pk in by_id]


def ranked_buyable(space, vector, hits, exclude=(), filters=None) -> list[Product]:
    """The buyable products among ``hits`` [(product id, distance)], best first in ``space``."""
    distance = dict(hits)
    products = buyable_in_order([pk for pk, _ in hits], exclude, filters)
    return space.rerank(vector, [(product, 1.0 - distance[product.pk] ** 2 / 2.0) for product in products])


def products_near(space, index, vector: np.ndarray, k: int, exclude=(), filters=None) -> list[Product]:
    """The k products nearest to a search vector of ``space`` that a shopper can buy."""
    k = max(1, min(int(k), MAX_RESULTS))
    exclude = set(exclude)
    count = (k + len(exclude)) * 4 + 20
    while True:
        hits = nearest_products(space, index, vector, count)
        found = ranked_buyable(space, vector, hits, exclude, filters)
        if len(found) >= k or len(hits) < count or count >= 5000:
            break
        count *= 4  # many neighbours are out of stock or filtered out: look further
    return found[:k]
