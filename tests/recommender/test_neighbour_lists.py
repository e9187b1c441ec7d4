"""The stored neighbour lists computed by exact search (recommender.neighbour_lists)."""

import numpy as np
import pytest
from annoy import AnnoyIndex

from recommender import annoy_index, neighbour_lists
from recommender.neighbour_lists import annoy_neighbour_lists, nearest_neighbour_lists


def naive_lists(vectors, width):
    """Each row's nearest other rows by a plain loop: float64 dot products, the lower row
    number first among equal similarities, -1 padding."""
    vectors = np.asarray(vectors, dtype=np.float64)
    lists = np.full((len(vectors), width), -1, dtype=np.int32)
    for item in range(len(vectors)):
        others = [other for other in range(len(vectors)) if other != item]
        others.sort(key=lambda other: (-float(vectors[item] @ vectors[other]), other))
        lists[item, : len(others[:width])] = others[:width]
    return lists


def integer_vectors(count, dimensions, seed):
    """Small integer components: every dot product is exact in float32, and many tie."""
    return np.random.default_rng(seed).integers(-2, 3, (count, dimensions)).astype(np.float32)


def unit_vectors(count, dimensions, seed):
    vectors = np.random.default_rng(seed).normal(size=(count, dimensions)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize(
    "count, dimensions, width",
    [(250, 6, 40), (41, 5, 40), (40, 5, 40), (12, 4, 40), (2, 3, 40), (1, 3, 40), (0, 3, 40), (90, 3, 7)],
)
def test_lists_equal_brute_force_ties_and_all(count, dimensions, width):
    vectors = integer_vectors(count, dimensions, seed=count)

    lists = nearest_neighbour_lists(vectors, width, block=32)

    assert lists.dtype == np.int32
    assert lists.shape == (count, width)
    np.testing.assert_array_equal(lists, naive_lists(vectors, width))


def test_unit_vectors_get_their_nearest_in_order():
    vectors = unit_vectors(400, 24, seed=1)

    lists = nearest_neighbour_lists(vectors, 40, block=64)

    expected = naive_lists(vectors, 40)
    similarity = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    found = np.take_along_axis(similarity, lists.astype(np.int64), axis=1)
    wanted = np.take_along_axis(similarity, expected.astype(np.int64), axis=1)
    # float32 products may swap two neighbours closer than float32 rounding, no more
    np.testing.assert_allclose(found, wanted, atol=1e-6)
    assert (lists == expected).mean() > 0.99


def test_an_item_is_never_its_own_neighbour_even_beside_its_duplicate():
    vectors = np.repeat(unit_vectors(30, 8, seed=2), 2, axis=0)  # each photo twice

    lists = nearest_neighbour_lists(vectors, 5, block=7)

    rows = np.arange(len(vectors))
    assert not (lists == rows[:, None]).any()
    np.testing.assert_array_equal(lists[:, 0], rows ^ 1)  # its duplicate comes first


def test_fewer_items_than_the_width_are_padded_with_minus_one():
    lists = nearest_neighbour_lists(unit_vectors(4, 3, seed=3), 40)

    assert lists.shape == (4, 40)
    assert (lists[:, :3] >= 0).all()
    assert (lists[:, 3:] == -1).all()
    assert [sorted(row[:3]) for row in lists] == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]


@pytest.mark.parametrize("block", [1, 3, 16, 100, 1000])
def test_blocks_give_the_same_lists_as_one_block(block):
    vectors = integer_vectors(230, 5, seed=4)

    expected = nearest_neighbour_lists(vectors, 40, block=len(vectors))

    np.testing.assert_array_equal(nearest_neighbour_lists(vectors, 40, block=block), expected)


def recording(calls, reorder=lambda candidates, similarities: candidates):
    def rerank(items, candidates, similarities):
        calls.append((items.copy(), candidates.copy(), similarities.copy()))
        return reorder(candidates, similarities)

    return rerank


def test_rerank_gets_what_the_annoy_build_gives_it():
    vectors = unit_vectors(150, 12, seed=5)
    annoy = AnnoyIndex(12, "angular")
    for item, vector in enumerate(vectors):
        annoy.add_item(item, vector)
    annoy.build(10, n_jobs=1)
    annoy_calls, exact_calls = [], []

    # A search_k over every node makes Annoy exact on so few items.
    annoy_neighbour_lists(
        annoy, len(vectors), 40, 10**6, recording(annoy_calls), pool_factor=annoy_index.RERANK_POOL_FACTOR
    )
    nearest_neighbour_lists(
        vectors,
        annoy_index.PRECOMPUTED_NEIGHBOURS,
        rerank=recording(exact_calls),
        pool_factor=annoy_index.RERANK_POOL_FACTOR,
    )

    def joined(calls):
        return [np.concatenate([call[part] for call in calls]) for part in range(3)]

    annoy_items, annoy_candidates, annoy_similarities = joined(annoy_calls)
    items, candidates, similarities = joined(exact_calls)
    assert (items.dtype, candidates.dtype, similarities.dtype) == (np.int64, np.int64, np.float32)
    assert candidates.shape == annoy_candidates.shape == (150, 80)
    np.testing.assert_array_equal(items, annoy_items)
    # Same candidates with the same cosine similarities, nearest first; the order of two
    # candidates may differ only where their similarities tie within float32 rounding.
    for row in range(len(items)):
        assert set(candidates[row]) == set(annoy_candidates[row])
    np.testing.assert_allclose(similarities, annoy_similarities, atol=1e-5)
    assert (np.diff(similarities, axis=1) <= 0).all()
    exact = np.take_along_axis(vectors @ vectors.T, candidates, axis=1)
    np.testing.assert_allclose(similarities, exact, atol=1e-6)


def test_the_reranked_order_is_what_is_stored():
    vectors = unit_vectors(100, 8, seed=6)
    calls = []

    lists = nearest_neighbour_lists(
        vectors, 10, rerank=recording(calls, lambda candidates, _: candidates[:, ::-1]), pool_factor=2
    )

    candidates = np.concatenate([call[1] for call in calls])
    np.testing.assert_array_equal(lists, candidates[:, ::-1][:, :10])
    np.testing.assert_array_equal(candidates[:, :10], naive_lists(vectors, 10))


def test_a_rerank_pool_is_cut_to_the_items_there_are():
    vectors = unit_vectors(6, 4, seed=7)
    calls = []

    lists = nearest_neighbour_lists(vectors, 40, rerank=recording(calls))

    assert calls[0][1].shape == (6, 5)  # every other item, none missing
    assert (calls[0][1] >= 0).all() and np.isfinite(calls[0][2]).all()
    assert (lists[:, :5] >= 0).all() and (lists[:, 5:] == -1).all()


class CountingIndex:
    """An Annoy index that counts the neighbour queries made of it."""

    def __init__(self, annoy):
        self.annoy, self.queries = annoy, 0

    def get_nns_by_item(self, *args, **kwargs):
        self.queries += 1
        return self.annoy.get_nns_by_item(*args, **kwargs)


def test_a_build_lists_exactly_up_to_the_limit_and_asks_annoy_beyond(monkeypatch):
    vectors = unit_vectors(120, 8, seed=11)
    annoy = AnnoyIndex(8, "angular")
    for item, vector in enumerate(vectors):
        annoy.add_item(item, vector)
    annoy.build(10, n_jobs=1)
    index = CountingIndex(annoy)

    exact = neighbour_lists.of_every_item(vectors, lambda: index, 10, 10**6)
    assert index.queries == 0
    monkeypatch.setattr(neighbour_lists, "EXACT_MAX_ITEMS", 100)
    approximate = neighbour_lists.of_every_item(vectors, lambda: index, 10, 10**6)

    assert index.queries == 120
    # On so few items a search_k over every node makes Annoy exact too.
    assert [set(row) for row in approximate] == [set(row) for row in exact]


def recall_at_5(lists, exact, similarity):
    """Share of each item's 5 listed neighbours at least as near as its exact 5th."""
    fifth = np.take_along_axis(similarity, exact[:, 4:5].astype(np.int64), axis=1)
    found = np.take_along_axis(similarity, lists[:, :5].astype(np.int64), axis=1)
    return float((found >= fifth - 1e-6).mean())


def low_rank_unit_vectors(count, dimensions, rank, seed):
    """Unit vectors near a ``rank``-dimensional subspace, as CNN features mostly are."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, rank)) @ rng.normal(size=(rank, dimensions))
    vectors += rng.normal(scale=0.3, size=(count, dimensions))
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def reduced_from_600_items_to_24_dimensions(monkeypatch):
    monkeypatch.setattr(neighbour_lists, "REDUCE_FROM_ITEMS", 600)
    monkeypatch.setattr(neighbour_lists, "REDUCED_DIMENSIONS", 24)


@pytest.fixture
def reductions(monkeypatch):
    """The shapes of the vectors reduced, one per call of neighbour_lists.reduced."""
    shapes, reduce = [], neighbour_lists.reduced

    def recording(vectors, dimensions):
        shapes.append(vectors.shape)
        return reduce(vectors, dimensions)

    monkeypatch.setattr(neighbour_lists, "reduced", recording)
    return shapes


def test_many_wide_vectors_are_listed_from_reduced_candidates_in_their_exact_order(
    reduced_from_600_items_to_24_dimensions, reductions
):
    vectors = low_rank_unit_vectors(800, 96, rank=20, seed=5)
    similarity = vectors.astype(np.float64) @ vectors.T.astype(np.float64)

    lists = nearest_neighbour_lists(vectors, 40, block=128)

    assert reductions == [(800, 96)]
    exact = naive_lists(vectors, 40)
    assert recall_at_5(lists, exact, similarity) >= 0.98
    assert (lists >= 0).all() and all(item not in row for item, row in enumerate(lists))
    listed = np.take_along_axis(similarity, lists.astype(np.int64), axis=1)
    assert (np.diff(listed, axis=1) <= 1e-6).all()  # nearest first, by true similarity


@pytest.mark.parametrize("count, dimensions", [(599, 96), (800, 24)])
def test_fewer_items_or_dimensions_stay_exact(
    reduced_from_600_items_to_24_dimensions, reductions, count, dimensions
):
    vectors = integer_vectors(count, dimensions, seed=count)

    lists = nearest_neighbour_lists(vectors, 12, block=128)

    assert reductions == []
    np.testing.assert_array_equal(lists, naive_lists(vectors, 12))


@pytest.mark.slow
def test_reduced_candidates_keep_recall_on_the_real_catalogue_sample(dev_catalogue, monkeypatch):
    """The real sample's 1,408-d search vectors, listed as a 44k catalogue's are."""
    from django.conf import settings

    monkeypatch.setattr(neighbour_lists, "REDUCE_FROM_ITEMS", 0)
    vectors = dev_catalogue.search_vectors(settings.COLOUR_WEIGHT).astype(np.float32)
    assert vectors.shape[1] > neighbour_lists.REDUCED_DIMENSIONS
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    exact = np.argsort(-similarity, axis=1, kind="stable")[:, :40]

    lists = nearest_neighbour_lists(vectors, 40)

    assert recall_at_5(lists, exact, similarity) >= 0.98
