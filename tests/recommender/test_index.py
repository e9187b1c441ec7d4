"""The Annoy index: builds, atomic swaps, fallbacks, and what similar-items returns."""

import json
import os
import shutil
import threading
import time

import numpy as np
import pytest
from django.core.cache import cache

from catalog.models import Product
from recommender import annoy_index, neighbour_lists, neighbours
from recommender.models import Embedding, IndexBuild
from recommender.queueing import REBUILD_PENDING_KEY
from recommender.refresh import products_needing_embedding, rebuild_index
from recommender.similar import similar_products
from recommender.vector_store import stored_vectors
from tests.factories import EmbeddingFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def host_cache(settings, tmp_path):
    """This process's own cache of index builds, empty at the start of each test."""
    settings.INDEX_CACHE_DIR = tmp_path / "index-cache"
    return settings.INDEX_CACHE_DIR


def cluster_of(product):
    return product.article_type


def stored(index_dir, pattern):
    """Files of the published builds in the search files folder."""
    return sorted((index_dir / "builds").glob(f"*/{pattern}"))


def test_rebuild_records_the_build_and_swaps_it_in(clustered_catalogue, fresh_index_dir):
    build = rebuild_index()
    assert build.status == IndexBuild.Status.READY
    assert build.item_count == 30
    assert build.duration_seconds > 0
    pointer = json.loads((fresh_index_dir / "current.json").read_text())
    assert pointer["build_id"] == build.pk
    assert len(annoy_index.current_index()) == 30


def test_similar_products_come_from_the_same_cluster_and_never_the_product_itself(clustered_catalogue):
    rebuild_index()
    product = clustered_catalogue[0]
    similar = similar_products(product)
    assert len(similar) == 5
    assert product not in similar
    assert {cluster_of(p) for p in similar} == {cluster_of(product)}


def test_similar_products_skip_inactive_and_out_of_stock(clustered_catalogue):
    rebuild_index()
    product = clustered_catalogue[0]
    same_cluster = [p for p in clustered_catalogue[1:10]]
    for gone in same_cluster[:3]:
        gone.stock = 0
        gone.save()
    same_cluster[3].is_active = False
    same_cluster[3].save()
    similar = similar_products(product)
    assert len(similar) == 5
    assert not {p.pk for p in similar} & {p.pk for p in same_cluster[:4]}
    assert {cluster_of(p) for p in similar} == {cluster_of(product)}


def test_similar_products_look_past_many_sold_out_neighbours_in_build_order(clustered_catalogue):
    rebuild_index()
    product = clustered_catalogue[0]
    stored = annoy_index.current_index().stored_neighbours(product.pk)
    Product.objects.filter(pk__in=stored[:12]).update(stock=0)  # more than the first rows read

    assert [p.pk for p in similar_products(product)] == stored[12:17]


def test_a_product_added_after_the_build_is_already_findable(clustered_catalogue):
    rebuild_index()
    cache.add(REBUILD_PENDING_KEY, "1")  # a rebuild is already on its way
    newcomer = ProductFactory(article_type="type1")
    EmbeddingFactory(product=newcomer, cnn=np.eye(3, 16, dtype=np.float32)[1] * 10)  # the centre of cluster 1
    neighbour = clustered_catalogue[10]
    assert newcomer in similar_products(neighbour)
    assert newcomer.pk not in annoy_index.current_index().positions


def test_vectors_stored_since_the_build_are_read_again_once_a_second(
    clustered_catalogue, settings, monkeypatch
):
    settings.NEWER_VECTORS_SECONDS = 1
    clock = [1000.0]
    monkeypatch.setattr(neighbours.time, "monotonic", lambda: clock[0])
    rebuild_index()
    cache.add(REBUILD_PENDING_KEY, "1")  # a rebuild is already on its way
    neighbour = clustered_catalogue[10]
    similar_products(neighbour)  # nothing stored since the build
    newcomer = ProductFactory(article_type="type1")
    EmbeddingFactory(product=newcomer, cnn=np.eye(3, 16, dtype=np.float32)[1] * 10)

    clock[0] += 0.5
    assert newcomer not in similar_products(neighbour)  # read half a second ago
    clock[0] += 0.6
    assert newcomer in similar_products(neighbour)


def test_missing_index_falls_back_to_exact_search(clustered_catalogue, fresh_index_dir):
    rebuild_index()
    for path in stored(fresh_index_dir, "build-*.ann"):
        path.unlink()
    annoy_index.forget_loaded_index()
    with pytest.raises(annoy_index.IndexUnavailable):
        annoy_index.current_index()
    similar = similar_products(clustered_catalogue[0])
    assert len(similar) == 5
    assert {cluster_of(p) for p in similar} == {"type0"}


def test_corrupt_index_file_falls_back_to_exact_search(clustered_catalogue, fresh_index_dir):
    rebuild_index()
    for path in stored(fresh_index_dir, "build-*.ann"):
        path.write_bytes(b"\x00garbage")
    annoy_index.forget_loaded_index()
    with pytest.raises(annoy_index.IndexUnavailable):
        annoy_index.current_index()
    similar = similar_products(clustered_catalogue[15])
    assert {cluster_of(p) for p in similar} == {"type1"}


def test_an_index_file_damaged_with_its_size_kept_is_refused(clustered_catalogue, fresh_index_dir):
    rebuild_index()
    (ann,) = stored(fresh_index_dir, "build-*.ann")
    data = bytearray(ann.read_bytes())
    data[len(data) // 2] ^= 0xFF
    ann.write_bytes(bytes(data))
    with pytest.raises(annoy_index.IndexUnavailable, match="checksum"):
        annoy_index.current_index()


def test_a_damaged_local_copy_is_fetched_again_from_the_store(clustered_catalogue, host_cache):
    build = rebuild_index()
    annoy_index.current_index()
    (copy,) = host_cache.glob(f"builds/*/build-{build.pk}.ann")
    whole = copy.stat().st_size
    os.truncate(copy, whole // 2)
    annoy_index.forget_loaded_index()  # as a process of this host starting now

    assert len(annoy_index.current_index()) == 30
    (copy,) = host_cache.glob(f"builds/*/build-{build.pk}.ann")
    assert copy.stat().st_size == whole


def test_a_loaded_build_keeps_serving_when_the_store_loses_its_files(clustered_catalogue, fresh_index_dir):
    build = rebuild_index()
    annoy_index.current_index()
    shutil.rmtree(fresh_index_dir / "builds")
    index = annoy_index.current_index()
    assert index.build_id == build.pk
    assert "missing or truncated in the search files store" in annoy_index.publication_problem(index)


def test_corrupt_pointer_falls_back_to_exact_search(clustered_catalogue, fresh_index_dir):
    rebuild_index()
    (fresh_index_dir / "current.json").write_text("{not json")
    similar = similar_products(clustered_catalogue[25])
    assert {cluster_of(p) for p in similar} == {"type2"}


def test_no_index_and_no_vectors_gives_same_kind_products(db):
    shirt = ProductFactory(article_type="Shirts", base_colour="Blue")
    same = ProductFactory(article_type="Shirts", base_colour="Blue")
    ProductFactory(article_type="Watches")
    assert similar_products(shirt) == [same]


def test_a_new_build_is_picked_up_without_restart(clustered_catalogue):
    first = rebuild_index()
    assert annoy_index.current_index().build_id == first.pk
    second = rebuild_index()
    assert annoy_index.current_index().build_id == second.pk


def test_old_builds_are_removed(clustered_catalogue, fresh_index_dir):
    for _ in range(4):
        rebuild_index()
    builds = list((fresh_index_dir / "builds").iterdir())
    assert len(builds) == annoy_index.KEEP_BUILDS
    assert len(stored(fresh_index_dir, "build-*")) == 3 * annoy_index.KEEP_BUILDS
    current = json.loads((fresh_index_dir / "current.json").read_text())
    assert (fresh_index_dir / current["folder"] / current["ann"]).is_file()


@pytest.mark.django_db(transaction=True)
def test_queries_keep_answering_while_the_index_is_swapped(clustered_catalogue):
    rebuild_index()
    product = clustered_catalogue[12]
    errors, answers = [], []
    stop = threading.Event()

    def query():
        from django.db import connection

        try:
            while not stop.is_set():
                answers.append([p.pk for p in similar_products(product)])
        except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
            errors.append(exc)
        finally:
            connection.close()

    reader = threading.Thread(target=query)
    reader.start()
    try:
        for _ in range(5):
            rebuild_index()
    finally:
        stop.set()
        reader.join(timeout=30)
    assert not errors
    assert answers
    assert all(len(answer) == 5 for answer in answers)
    assert all(pk != product.pk for answer in answers for pk in answer)


def test_vectors_made_by_an_older_recipe_are_recomputed_and_never_searched(db):
    current, outdated = ProductFactory.create_batch(2, with_image=True)
    for product in (current, outdated):
        EmbeddingFactory(product=product, cnn=np.ones(16), checksum=product.image_checksum)
    Embedding.objects.filter(product=outdated).update(recipe="p0-c1")

    assert products_needing_embedding() == [outdated.pk]
    ids, _ = stored_vectors()
    assert ids.tolist() == [current.pk]


def test_each_build_stores_every_products_nearest_neighbours(clustered_catalogue):
    rebuild_index()
    index = annoy_index.current_index()
    product = clustered_catalogue[21]
    stored = index.stored_neighbours(product.pk)
    assert product.pk not in stored
    assert len(stored) == 29  # every other product: the catalogue is smaller than the list
    assert {p.article_type for p in Product.objects.filter(pk__in=stored[:9])} == {"type2"}


def test_a_product_whose_photo_changed_after_the_build_is_matched_by_its_new_photo(clustered_catalogue):
    rebuild_index()
    cache.add(REBUILD_PENDING_KEY, "1")  # a rebuild is already on its way
    product = clustered_catalogue[0]
    EmbeddingFactory(product=product, cnn=np.eye(3, 16, dtype=np.float32)[2] * 10)  # now looks like cluster 2
    assert {p.article_type for p in similar_products(product)} == {"type2"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_rebuilds_run_one_after_the_other(clustered_catalogue, monkeypatch):
    from django.db import connection

    real = neighbour_lists.of_every_item
    first_inside = threading.Event()

    def slow_first(*args, **kwargs):
        if not first_inside.is_set():
            first_inside.set()
            time.sleep(1.0)  # the second rebuild starts meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(neighbour_lists, "of_every_item", slow_first)
    builds = {}

    def rebuild(name):
        try:
            builds[name] = rebuild_index()
        finally:
            connection.close()

    first = threading.Thread(target=rebuild, args=("first",))
    first.start()
    assert first_inside.wait(10)
    second = threading.Thread(target=rebuild, args=("second",))
    second.start()
    first.join(30)
    second.join(30)

    assert {b.status for b in builds.values()} == {IndexBuild.Status.READY}
    pointer = json.loads((annoy_index.index_dir() / annoy_index.POINTER_NAME).read_text())
    assert pointer["build_id"] == builds["second"].pk  # the later rebuild is the one served
    annoy_index.forget_loaded_index()
    assert len(annoy_index.current_index()) == 30
