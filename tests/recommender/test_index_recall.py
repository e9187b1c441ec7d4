"""The Annoy index finds what exact search finds, with the shipped index settings.

bench/bench_similar.py measures recall and time for other n_trees / search_k values and
at the full catalogue's size.
"""

import numpy as np
import pytest
from django.conf import settings

from quality import evaluation

# 5 similar products + the product itself; and what the product page first asks for.
COUNTS = (6, 44)


def random_unit_vectors(count=2000, dimensions=32, seed=3):
    vectors = np.random.default_rng(seed).normal(size=(count, dimensions))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_exact_kth_similarity_leaves_the_product_itself_out():
    vectors = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
    kth = evaluation.exact_kth_similarity(vectors, np.arange(3), k=1)
    assert kth == pytest.approx([0.8, 0.8, 0.6])


def test_recall_tells_a_thorough_search_from_a_hasty_one(tmp_path):
    vectors = random_unit_vectors()
    queries = np.arange(0, len(vectors), 7)
    kth = evaluation.exact_kth_similarity(vectors, queries)
    loaded, _, size = evaluation.scratch_index(tmp_path, vectors, n_trees=2)
    assert size > 0
    thorough = evaluation.index_recall(loaded, vectors, queries, kth, search_k=len(vectors) * 2)
    hasty = evaluation.index_recall(loaded, vectors, queries, kth, search_k=1)
    assert thorough == 1.0
    assert hasty < 0.9


@pytest.mark.slow
def test_index_with_the_shipped_settings_finds_what_exact_search_finds(dev_catalogue, tmp_path):
    vectors = dev_catalogue.search_vectors(settings.COLOUR_WEIGHT)
    queries = np.arange(len(vectors))
    kth = evaluation.exact_kth_similarity(vectors, queries)
    loaded, _, _ = evaluation.scratch_index(tmp_path, vectors, settings.ANNOY_N_TREES)
    for count in COUNTS:
        recall = evaluation.index_recall(loaded, vectors, queries, kth, settings.ANNOY_SEARCH_K, count=count)
        assert recall >= 0.98, f"recall@5 asking for {count} neighbours"
    # What product pages read: the neighbour lists stored with the build.
    assert evaluation.stored_neighbours_recall(loaded, vectors, queries, kth) >= 0.98
