"""Embedding many photos: files of the next batches are prepared while the model runs,
with the same vectors, the same failures and the same order as one step after the other."""

import functools
import threading
import time

import numpy as np
import pytest
from django.core.files.base import ContentFile

from recommender import active_model, refresh
from recommender.embedding import InvalidImage, colour_descriptor, prepare_image
from recommender.embedding.embedder import Embedder
from recommender.embedding.pipeline import embed_photo_batches
from recommender.models import Embedding
from tests.factories import ProductFactory
from tests.images import BLUE, GREEN, RED, YELLOW, garment_photo

TRUNCATED_JPEG = garment_photo(GREEN)[:300]


class PixelMeanModel(Embedder):
    """A stand-in model: the mean of each colour channel, after ``seconds`` of "inference"
    (sleeping, like a runtime that releases the GIL). Records when each run starts and ends."""

    def __init__(self, seconds=0.0):
        super().__init__("pixel-mean", 3)
        self.seconds = seconds
        self.runs = []  # (started, finished) per call of the network

    def _features(self, batch):
        started = time.monotonic()
        time.sleep(self.seconds)
        self.runs.append((started, time.monotonic()))
        return batch.reshape(len(batch), -1, 3).mean(axis=1)


def pixels(value):
    return np.full((224, 224, 3), value, dtype=np.uint8)


def embed_all(batches, prepare, embedder, **options):
    return [photos for photos in embed_photo_batches(batches, prepare, embedder, **options)]


def photo_files(folder):
    """Good photos between a text file, a truncated JPEG and a missing file."""
    files = {
        "red.jpg": garment_photo(RED),
        "notes.jpg": b"this is not a jpeg at all",
        "blue.png": garment_photo(BLUE, fmt="PNG"),
        "truncated.jpg": TRUNCATED_JPEG,
        "yellow.jpg": garment_photo(YELLOW, size=(600, 800)),
        "grey.jpg": garment_photo(GREEN, mode="L"),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    paths = [folder / name for name in files]
    paths.insert(2, folder / "missing.jpg")
    return paths


# The pipeline itself, with a stand-in model


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_items_come_back_in_order_whatever_order_they_are_prepared_in(threads):
    delays = np.random.default_rng(3).uniform(0, 0.004, 40)

    def prepare(item):
        time.sleep(delays[item])
        return pixels(item), f"detail {item}"

    batches = [range(start, min(start + 6, 40)) for start in range(0, 40, 6)]
    result = embed_all(batches, prepare, PixelMeanModel(), threads=threads)

    assert [[photo.item for photo in photos] for photos in result] == [list(batch) for batch in batches]
    photos = [photo for batch in result for photo in batch]
    assert [float(photo.cnn[0]) for photo in photos] == list(range(40))
    assert [photo.detail for photo in photos] == [f"detail {item}" for item in range(40)]
    np.testing.assert_array_equal(photos[7].colour, colour_descriptor(pixels(7)))
    assert all(photo.pixels is None for photo in photos)  # not kept once embedded


def test_an_unreadable_item_is_reported_and_the_rest_of_its_batch_is_embedded():
    def prepare(item):
        if item == 2:
            raise InvalidImage("damaged")
        if item == 5:
            raise FileNotFoundError("no such file")
        if item == 6:
            return None  # needs no vectors
        return pixels(item), None

    result = embed_all([range(0, 4), range(4, 8)], prepare, PixelMeanModel(), threads=2)

    photos = [photo for batch in result for photo in batch]
    assert [photo.item for photo in photos if photo.embedded] == [0, 1, 3, 4, 7]
    assert [float(photo.cnn[0]) for photo in photos if photo.embedded] == [0, 1, 3, 4, 7]
    assert [(photo.item, str(photo.error)) for photo in photos if photo.error] == [
        (2, "damaged"),
        (5, "no such file"),
    ]
    assert photos[6].error is None and not photos[6].embedded and photos[6].colour is None


def test_an_unexpected_error_is_raised_and_the_queued_work_is_dropped():
    prepared = []

    def prepare(item):
        prepared.append(item)
        if item == 3:
            raise RuntimeError("a bug, not a bad photo")
        time.sleep(0.01)
        return pixels(item), None

    batches = [range(start, start + 4) for start in range(0, 400, 4)]
    with pytest.raises(RuntimeError, match="a bug"):
        embed_all(batches, prepare, PixelMeanModel(), threads=1)

    assert len(prepared) < 20  # not the 400 items of every batch


def test_the_next_batch_is_prepared_while_the_model_runs():
    prepare_started = {}

    def prepare(item):
        prepare_started.setdefault(item // 4, time.monotonic())
        time.sleep(0.01)
        return pixels(item), None

    model = PixelMeanModel(seconds=0.3)
    embed_all([range(start, start + 4) for start in range(0, 12, 4)], prepare, model, threads=1)

    first_run_finished = model.runs[0][1]
    assert prepare_started[1] < first_run_finished
    assert prepare_started[2] < first_run_finished  # two batches ahead


def test_one_step_after_the_other_when_asked():
    prepare_started = {}

    def prepare(item):
        prepare_started.setdefault(item // 4, time.monotonic())
        return pixels(item), None

    model = PixelMeanModel(seconds=0.05)
    embed_all([range(start, start + 4) for start in range(0, 12, 4)], prepare, model, threads=0)

    assert prepare_started[1] > model.runs[0][1]


def test_batches_are_read_at_most_two_ahead_of_the_model():
    read = []

    def batches():
        for start in range(0, 40, 4):
            read.append(start // 4)
            yield range(start, start + 4)

    seen = []
    for photos in embed_photo_batches(batches(), lambda item: (pixels(item), None), PixelMeanModel()):
        batch = photos[0].item // 4
        seen.append(batch)
        assert max(read) <= batch + 2
    assert seen == list(range(10))


# The real model, files and products


@pytest.fixture(scope="module")
def embedder():
    return active_model.get_embedder()


@pytest.mark.slow
def test_the_model_lets_other_threads_run_while_it_runs(embedder):
    images = np.stack([prepare_image(garment_photo(colour)) for colour in (RED, BLUE, GREEN, YELLOW)] * 16)
    embedder.embed_images(images[:4])
    beats, stop = [], threading.Event()

    def beat():
        while not stop.is_set():
            beats.append(time.perf_counter())

    thread = threading.Thread(target=beat)
    thread.start()
    try:
        time.sleep(0.02)
        started = time.perf_counter()
        embedder.embed_images(images, batch_size=64)
        finished = time.perf_counter()
    finally:
        stop.set()
        thread.join()

    during = np.array([moment for moment in beats if started <= moment <= finished])
    # Holding the GIL through the run (one call) would leave the other thread no turn
    # inside it: it gets turns all along, in most tenths of the run even on a busy machine.
    tenths = set(((during - started) / (finished - started) * 10).astype(int).tolist())
    assert len(tenths) >= 4, tenths


@pytest.mark.slow
def test_photo_files_give_what_one_step_after_the_other_gives(embedder, tmp_path):
    paths = photo_files(tmp_path)
    good = [0, 3, 5, 6]
    progress = []

    cnn, colour, failed = active_model.embed_photo_files(
        paths, embedder, batch_size=3, progress=progress.append
    )

    arrays = [prepare_image(paths[position]) for position in good]
    assert failed == [1, 2, 4]  # not an image, missing, truncated
    assert progress == [3, 6, 7]
    np.testing.assert_allclose(cnn, embedder.embed_images(arrays, batch_size=3), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(colour, np.stack([colour_descriptor(array) for array in arrays]))
    serial = active_model.embed_photo_files(paths, embedder, batch_size=3, threads=0)
    np.testing.assert_array_equal(cnn, serial[0])
    np.testing.assert_array_equal(colour, serial[1])
    assert failed == serial[2]


def stored_vectors():
    return {
        row.product_id: (
            row.checksum,
            np.frombuffer(row.cnn, np.float32),
            np.frombuffer(row.colour, np.float32),
        )
        for row in Embedding.objects.all()
    }


@pytest.mark.slow
@pytest.mark.django_db
def test_products_get_the_vectors_and_reports_of_one_step_after_the_other(
    embedder, media_root, settings, monkeypatch
):
    settings.EMBED_BATCH_SIZE = 2
    products = [
        ProductFactory(image=ContentFile(garment_photo(RED), name="p.jpg")),
        ProductFactory(image=ContentFile(b"this is not a jpeg at all", name="p.jpg")),
        ProductFactory(),
        ProductFactory(image=ContentFile(garment_photo(BLUE, fmt="PNG"), name="p.png")),
        ProductFactory(image=ContentFile(TRUNCATED_JPEG, name="p.jpg")),
        ProductFactory(image=ContentFile(garment_photo(YELLOW), name="p.jpg")),
        ProductFactory(image=ContentFile(garment_photo(GREEN), name="p.jpg")),
    ]
    (media_root / products[6].image.name).unlink()
    ids = [product.pk for product in products] + [999_999]  # one product that is gone

    progress = []
    report = refresh.embed_products(reversed(ids), progress=progress.append)
    overlapped = stored_vectors()
    Embedding.objects.all().delete()
    monkeypatch.setattr(refresh, "embed_photo_batches", functools.partial(embed_photo_batches, threads=0))
    serial_report = refresh.embed_products(ids)

    assert report.as_dict() == serial_report.as_dict()
    assert report.embedded == 3 and report.without_image == 1 and report.unchanged == 0
    assert [pk for pk, _ in report.failed] == [products[1].pk, products[4].pk, products[6].pk]
    assert (
        report.failed[0][1] == "This file is not an image we can read. Please use a JPEG, PNG or WebP photo."
    )
    assert progress == [2, 2, 2, 2]
    serial = stored_vectors()
    assert sorted(overlapped) == sorted(serial) == [products[0].pk, products[3].pk, products[5].pk]
    for pk, (checksum, cnn, colour) in overlapped.items():
        assert checksum == serial[pk][0]
        np.testing.assert_array_equal(cnn, serial[pk][1])
        np.testing.assert_array_equal(colour, serial[pk][2])
    red = prepare_image(garment_photo(RED))
    np.testing.assert_allclose(overlapped[products[0].pk][1], embedder.embed_one(red), rtol=0, atol=1e-5)

    again = refresh.embed_products(ids)
    assert again.unchanged == 3 and again.embedded == 0 and len(again.failed) == 3
