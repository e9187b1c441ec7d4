"""What keeps vectors and the index current: saves, imports, the debounce and the sweep.

Tests that need real commits (embedding is queued on commit) use a transactional
database; Celery runs eagerly, so a queued task has run when the save returns.
"""

from datetime import timedelta

import numpy as np
import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from catalog.importing import import_catalogue
from catalog.models import Product
from recommender import annoy_index, queueing, refresh, tasks
from recommender.models import Embedding, IndexBuild
from recommender.similar import similar_products
from tests.catalog_files import styles_line, write_catalogue
from tests.factories import EmbeddingFactory, ProductFactory
from tests.images import BLUE, GREEN, RED, YELLOW, garment_photo

committed = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def own_media_root(media_root):
    return media_root


def spy_on(monkeypatch, task):
    """Record the ``args`` of every ``task.apply_async`` call, then make the real call."""
    calls = []
    real = task.apply_async

    def apply_async(args=None, kwargs=None, **options):
        calls.append({"args": list(args or ()), **options})
        return real(args=args, kwargs=kwargs, **options)

    monkeypatch.setattr(task, "apply_async", apply_async)
    return calls


@pytest.fixture
def embedding_tasks(monkeypatch):
    """The product id lists of the embedding tasks sent."""
    return spy_on(monkeypatch, tasks.embed_products_task)


@pytest.fixture
def rebuild_tasks(monkeypatch):
    return spy_on(monkeypatch, tasks.rebuild_index_task)


def sent_ids(calls):
    return [call["args"][0] for call in calls]


def photo_product(colour=RED, **fields):
    return ProductFactory(image=ContentFile(garment_photo(colour), name="p.jpg"), **fields)


# Saving products


@pytest.mark.slow
@committed
def test_new_product_with_a_photo_is_embedded_and_indexed(embedding_tasks):
    product = photo_product()

    embedding = Embedding.objects.get(product=product)
    assert embedding.checksum == product.image_checksum
    assert embedding.cnn_vector.shape == (1280,)
    assert sent_ids(embedding_tasks) == [[product.pk]]
    build = IndexBuild.objects.get()
    assert build.status == IndexBuild.Status.READY
    assert product.pk in annoy_index.current_index().positions


@pytest.mark.slow
@committed
def test_saving_without_changing_the_photo_does_not_embed_again(embedding_tasks):
    product = photo_product()
    first = Embedding.objects.get(product=product).updated_at
    embedding_tasks.clear()

    reloaded = Product.objects.get(pk=product.pk)
    reloaded.price = "9.99"
    reloaded.save()
    assert embedding_tasks == []  # read from the database, it knows its photo is unchanged

    product.name = "Renamed"
    product.save()  # the instance that was created, saved again

    assert Embedding.objects.get(product=product).updated_at == first
    assert Embedding.objects.count() == 1


@pytest.mark.slow
@committed
def test_changing_the_photo_embeds_again(embedding_tasks):
    product = photo_product(RED)
    before = Embedding.objects.get(product=product)

    product = Product.objects.get(pk=product.pk)
    product.image = ContentFile(garment_photo(BLUE), name="new.jpg")
    product.save()

    after = Embedding.objects.get(product=product)
    assert after.checksum == product.image_checksum != before.checksum
    assert after.updated_at > before.updated_at
    assert not np.allclose(after.colour_vector, before.colour_vector)
    assert sent_ids(embedding_tasks)[-1] == [product.pk]


@committed
def test_a_rolled_back_save_queues_nothing(embedding_tasks):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            photo_product()
            raise RuntimeError("checkout failed")

    assert embedding_tasks == []
    assert not Embedding.objects.exists()


@pytest.mark.slow
@committed
def test_many_saves_in_one_transaction_go_out_in_batched_tasks(settings, embedding_tasks):
    settings.EMBED_TASK_SIZE = 3
    colours = [RED, BLUE, GREEN, YELLOW, RED, BLUE, GREEN]
    with transaction.atomic():
        products = [photo_product(colour) for colour in colours]
        assert embedding_tasks == []  # nothing before the commit

    ids = sorted(p.pk for p in products)
    assert sent_ids(embedding_tasks) == [ids[0:3], ids[3:6], ids[6:7]]
    assert Embedding.objects.count() == 7


@pytest.mark.slow
@committed
def test_a_rollback_does_not_leak_ids_into_the_next_transaction(embedding_tasks):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            lost = photo_product(RED)
            raise RuntimeError
    with transaction.atomic():
        kept = photo_product(BLUE)

    assert sent_ids(embedding_tasks) == [[kept.pk]]
    assert lost.pk not in Embedding.objects.values_list("product_id", flat=True)


@committed
def test_a_product_without_photo_is_not_embedded(embedding_tasks):
    product = ProductFactory()
    product.price = "5.00"
    product.save()

    assert embedding_tasks == []
    assert not Embedding.objects.exists()


@committed
def test_removing_the_photo_removes_the_vectors():
    product = ProductFactory()
    Product.objects.filter(pk=product.pk).update(image="products/old.jpg", image_checksum="abc")
    EmbeddingFactory(product=product, cnn=np.ones(16), checksum="abc")

    product = Product.objects.get(pk=product.pk)
    product.image = None
    product.save()

    assert not Embedding.objects.filter(product=product).exists()


# Imports


@pytest.mark.slow
@committed
def test_imported_products_are_embedded(tmp_path, embedding_tasks):
    folder = write_catalogue(
        tmp_path / "catalogue",
        [styles_line(71), styles_line(72, colour="Red"), styles_line(73)],
        images={71: garment_photo(BLUE), 72: garment_photo(RED)},
    )

    report = import_catalogue(folder)

    assert report.created == 3
    assert sorted(Embedding.objects.values_list("product_id", flat=True)) == [71, 72]
    assert {71, 72} <= {pk for ids in sent_ids(embedding_tasks) for pk in ids}
    assert IndexBuild.objects.filter(status=IndexBuild.Status.READY).exists()


@pytest.mark.slow
@committed
def test_reimporting_the_same_files_embeds_nothing(tmp_path, embedding_tasks):
    folder = write_catalogue(tmp_path / "catalogue", [styles_line(81)], images={81: garment_photo(GREEN)})
    import_catalogue(folder)
    first = Embedding.objects.get(product_id=81).updated_at
    embedding_tasks.clear()

    import_catalogue(folder)

    assert embedding_tasks == []
    assert Embedding.objects.get(product_id=81).updated_at == first


# Reading photos


@pytest.mark.slow
@committed
def test_a_broken_photo_is_reported_not_raised(embedding_tasks):
    broken = ProductFactory(image=ContentFile(b"this is not a jpeg at all", name="p.jpg"))
    fine = photo_product(BLUE)

    assert not Embedding.objects.filter(product=broken).exists()  # the save itself did not fail
    report = refresh.embed_products([broken.pk, fine.pk])

    assert report.failed == [
        (broken.pk, "This file is not an image we can read. Please use a JPEG, PNG or WebP photo.")
    ]
    assert report.unchanged == 1
    assert report.embedded == 0


@pytest.mark.slow
@pytest.mark.django_db
def test_a_missing_photo_file_is_reported_not_raised(media_root):
    product = photo_product(RED)
    (media_root / product.image.name).unlink()

    report = refresh.embed_products([product.pk])

    assert len(report.failed) == 1
    assert report.failed[0][0] == product.pk
    assert not Embedding.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db
def test_embedding_report_counts_products_without_photo():
    bare = ProductFactory()

    report = refresh.embed_products([bare.pk])

    assert report.as_dict() == {"embedded": 0, "unchanged": 0, "without_image": 1, "failed": []}


# Index rebuild requests


@pytest.mark.django_db
def test_a_burst_of_rebuild_requests_builds_once(clustered_catalogue, rebuild_tasks, settings):
    answers = [queueing.request_index_rebuild() for _ in range(6)]

    assert answers == [True, False, False, False, False, False]
    assert len(rebuild_tasks) == 1
    assert rebuild_tasks[0]["countdown"] == settings.INDEX_REBUILD_DELAY
    build = IndexBuild.objects.get()
    assert build.status == IndexBuild.Status.READY
    assert build.item_count == 30


@pytest.mark.django_db
def test_a_request_after_the_window_builds_again(clustered_catalogue):
    queueing.request_index_rebuild()
    cache.delete(queueing.REBUILD_PENDING_KEY)  # what the window's expiry does

    assert queueing.request_index_rebuild() is True
    assert IndexBuild.objects.filter(status=IndexBuild.Status.READY).count() == 2


@pytest.mark.django_db
def test_a_stale_index_is_rebuilt_by_the_first_search_after_the_window(clustered_catalogue):
    queueing.request_index_rebuild()
    newcomer = ProductFactory(article_type="type0")
    EmbeddingFactory(product=newcomer, cnn=np.eye(3, 16, dtype=np.float32)[0] * 10)
    assert queueing.request_index_rebuild() is False  # folded into the rebuild that already ran
    cache.delete(queueing.REBUILD_PENDING_KEY)  # the window has passed

    similar_products(clustered_catalogue[0])

    assert newcomer.pk in annoy_index.current_index().positions


@pytest.fixture
def worker_side(settings, monkeypatch):
    """Run the rebuild task as a worker does (not eagerly); the tasks it sends are recorded
    and not run (the real path is tests/recommender/test_celery_worker.py)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.INDEX_REBUILD_DELAY = 30
    settings.INDEX_REBUILD_SPACING = 2
    sent = []
    monkeypatch.setattr(queueing, "send_task", lambda name, *args, **options: sent.append(options) or True)
    return sent


def finished_build(seconds_ago, duration):
    finished = timezone.now() - timedelta(seconds=seconds_ago)
    return IndexBuild.objects.create(
        model_name="m", status=IndexBuild.Status.READY, finished_at=finished, duration_seconds=duration
    )


@pytest.mark.django_db
def test_a_rebuild_right_after_another_is_put_off_by_twice_the_last_duration(
    clustered_catalogue, worker_side
):
    finished_build(seconds_ago=5, duration=40)  # a long build just ended

    assert queueing.run_requested_rebuild() is None

    assert IndexBuild.objects.count() == 1  # nothing built now...
    assert worker_side[0]["countdown"] == pytest.approx(75, abs=2)  # ...but 80 s after the last one
    assert cache.get(queueing.REBUILD_PENDING_KEY)  # later requests fold into the put-off rebuild
    assert queueing.request_index_rebuild() is False


@pytest.mark.django_db
def test_a_rebuild_after_a_quick_build_waits_at_least_the_delay(clustered_catalogue, worker_side):
    finished_build(seconds_ago=10, duration=0.5)

    queueing.run_requested_rebuild()

    assert worker_side[0]["countdown"] == pytest.approx(20, abs=2)


@pytest.mark.django_db
def test_a_rebuild_long_enough_after_the_last_runs_now(clustered_catalogue, worker_side):
    finished_build(seconds_ago=100, duration=40)

    build = queueing.run_requested_rebuild()

    assert build.status == IndexBuild.Status.READY and worker_side == []
    assert queueing.seconds_until_next_rebuild() > 29  # and the next one waits for this one


@pytest.mark.django_db
def test_a_rebuild_waits_for_one_running_on_another_worker(clustered_catalogue, worker_side):
    IndexBuild.objects.create(model_name="m")  # started, not finished

    assert queueing.run_requested_rebuild() is None
    assert worker_side[0]["countdown"] == 30


@pytest.mark.django_db
def test_rebuild_with_nothing_to_index_is_recorded_as_failed(rebuild_tasks):
    assert queueing.request_index_rebuild() is True

    build = IndexBuild.objects.get()
    assert build.status == IndexBuild.Status.FAILED
    assert "no stored vectors" in build.error


@pytest.mark.django_db
def test_index_is_stale_until_rebuilt(clustered_catalogue):
    assert refresh.index_is_stale() is True
    refresh.rebuild_index()
    assert refresh.index_is_stale() is False

    EmbeddingFactory(product=ProductFactory(), cnn=np.ones(16))

    assert refresh.index_is_stale() is True


@pytest.mark.django_db
def test_vectors_committed_after_the_build_read_them_but_stamped_before_make_it_stale(clustered_catalogue):
    build = refresh.rebuild_index()
    late = EmbeddingFactory(product=ProductFactory(), cnn=np.ones(16))
    # Stamped when its task computed it, committed only after the build had read the table.
    Embedding.objects.filter(pk=late.pk).update(updated_at=build.vectors_until - timedelta(seconds=1))

    assert refresh.index_is_stale() is True
    refresh.rebuild_index()
    assert refresh.index_is_stale() is False
    assert late.product_id in annoy_index.current_index().positions


@pytest.mark.django_db
def test_an_index_holding_products_without_vectors_any_more_is_stale(clustered_catalogue):
    refresh.rebuild_index()
    Embedding.objects.filter(product=clustered_catalogue[0]).delete()  # no signal: a raw delete

    assert refresh.index_is_stale() is True


@pytest.mark.django_db
def test_sweep_rebuilds_a_stale_index(clustered_catalogue):
    result = tasks.sweep.delay().get()

    assert result == {"queued": 0, "index_stale": True}
    assert IndexBuild.objects.filter(status=IndexBuild.Status.READY).count() == 1
    assert refresh.index_is_stale() is False


@pytest.mark.slow
@pytest.mark.django_db
def test_sweep_embeds_products_whose_task_was_lost(embedding_tasks):
    # Inside the test's transaction nothing commits, so no task ran for these saves.
    products = [photo_product(RED), photo_product(BLUE)]
    assert not Embedding.objects.exists()

    result = queueing.sweep()

    assert result["queued"] == 2
    assert sorted(Embedding.objects.values_list("product_id", flat=True)) == sorted(p.pk for p in products)
    assert refresh.products_needing_embedding() == []
    assert IndexBuild.objects.filter(status=IndexBuild.Status.READY).exists()
