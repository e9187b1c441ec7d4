"""Embedding many photos at the model's speed: the next batches are read and prepared
while the model runs on the current one.

Reading, decoding and resizing a catalogue photo and computing its colour signature
costs about a fifth of what the model costs for it. Done in turn with the model, that
time is added to every batch; done in a thread beside it, it fits in the model's gaps.
Pillow's decoders, numpy and the LiteRT interpreter all release the GIL while they work,
so the threads really run side by side (bench/bench_embed.py measures both ways).
"""

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .colour import colour_descriptor
from .preprocessing import InvalidImage

# Batches prepared ahead of the one the model runs: enough to ride out a batch of slow
# files, and little memory (64 prepared photos are ~10 MB).
BATCHES_AHEAD = 2
# Threads preparing photos beside the model. One prepares a catalogue photo in ~2 ms while
# the model takes ~7 ms on 2 cores, so it keeps up; a second one measured within the noise
# of a shared machine (bench/bench_embed.py, thread grid) and competes with the model's threads.
PREPARING_THREADS = 1
# What an unreadable photo raises: reported with that photo, the others go on.
UNREADABLE = (InvalidImage, OSError)


@dataclass
class EmbeddedPhoto:
    """What became of one item: its vectors, or why it has none.

    ``cnn`` and ``colour`` are set when the photo was embedded; ``error`` when it could not
    be read; neither when ``prepare`` said the item needs no vectors. ``detail`` is what
    ``prepare`` returned beside the pixels (a checksum, say).
    """

    item: Any
    cnn: np.ndarray | None = None
    colour: np.ndarray | None = None
    detail: Any = None
    error: Exception | None = None
    pixels: np.ndarray | None = None  # the model input, only until the model has run

    @property
    def embedded(self) -> bool:
        return self.cnn is not None


def embed_photo_batches(
    batches: Iterable[Sequence],
    prepare: Callable[[Any], tuple[np.ndarray, Any] | None],
    embedder,
    *,
    model_batch_size: int = 16,
    threads: int = PREPARING_THREADS,
    ahead: int = BATCHES_AHEAD,
) -> Iterator[list[EmbeddedPhoto]]:
    """Yield, for each batch of items, one :class:`EmbeddedPhoto` per item, in order.

    ``prepare(item)`` runs in a worker thread and returns the model input (an array from
    ``prepare_image``) with a detail to keep, as a pair, or None when the item needs no
    vectors. When it raises InvalidImage or OSError the item is reported with that error
    and the rest of the batch is embedded; any other exception stops the embedding and is
    raised here. ``batches`` is read in the calling thread (it may query the database),
    at most ``ahead`` batches ahead of the one the model runs. ``threads=0`` prepares each
    batch in the calling thread just before the model runs on it, one step after the other.
    """
    if ahead < 1:
        raise ValueError("ahead must be at least 1")
    if threads == 0:
        for batch in batches:
            yield _embedded([_prepared(prepare, item) for item in batch], embedder, model_batch_size)
        return
    batches = iter(batches)
    queued = deque()  # futures of each batch sent to the threads, oldest first
    executor = ThreadPoolExecutor(threads, thread_name_prefix="prepare-photos")

    def queue_next_batch():
        for batch in batches:
            queued.append([executor.submit(_prepared, prepare, item) for item in batch])
            return True
        return False

    try:
        while len(queued) <= ahead and queue_next_batch():
            pass
        while queued:
            photos = [future.result() for future in queued.popleft()]
            # Topped up before the model runs, so the threads have work all along.
            while len(queued) < ahead and queue_next_batch():
                pass
            yield _embedded(photos, embedder, model_batch_size)
    finally:
        # Stopped early (an error, or the caller stopped reading): drop what is queued.
        executor.shutdown(wait=True, cancel_futures=True)


def _prepared(prepare, item) -> EmbeddedPhoto:
    try:
        prepared = prepare(item)
    except UNREADABLE as exc:
        return EmbeddedPhoto(item, error=exc)
    if prepared is None:
        return EmbeddedPhoto(item)
    pixels, detail = prepared
    return EmbeddedPhoto(item, colour=colour_descriptor(pixels), detail=detail, pixels=pixels)


def _embedded(photos, embedder, model_batch_size):
    readable = [photo for photo in photos if photo.pixels is not None]
    if readable:
        vectors = embedder.embed_images([photo.pixels for photo in readable], batch_size=model_batch_size)
        for photo, vector in zip(readable, vectors):
            photo.cnn = vector
            photo.pixels = None
    return photos
