"""The image embedder: real ImageNet weights, stable outputs, cached conversion."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from recommender.active_model import get_embedder
from recommender.embedding import efficientnet_lite, l2_normalise, prepare_image
from recommender.embedding.backend import load_tensorflow
from recommender.embedding.embedder import batch_plan, build_resnet50_embedder, load_keras_embedder
from tests.recommender.fixtures.reference_image import REFERENCE_EMBEDDING, reference_photo_png

# ImageNet-1k class indices (checked against the standard class list).
ANALOG_CLOCK, DIGITAL_WATCH, STOPWATCH, WALL_CLOCK = 409, 531, 826, 892
SUNGLASS, SUNGLASSES = 836, 837
SANDAL = 774
BACKPACK = 414
JEAN = 608
JERSEY_T_SHIRT = 610

# articleType -> (ImageNet classes that name it, share of photos that must get one of
# them in the top 5). Rates measured on the first 20 photos of each type: watches 0.80,
# sunglasses 1.00, sandals 0.90, flip flops 0.65 (ImageNet has no flip-flop class),
# backpacks 0.75, T-shirts 0.95, jeans 0.70. Untrained weights score about 0.
EXPECTED_CLASSES = {
    "Watches": ({ANALOG_CLOCK, DIGITAL_WATCH, STOPWATCH, WALL_CLOCK}, 0.7),
    "Sunglasses": ({SUNGLASS, SUNGLASSES}, 0.85),
    "Sandals": ({SANDAL}, 0.75),
    "Flip Flops": ({SANDAL}, 0.5),
    "Backpacks": ({BACKPACK}, 0.6),
    "Tshirts": ({JERSEY_T_SHIRT}, 0.8),
    "Jeans": ({JEAN}, 0.6),
}


def catalogue_photos(folder, article_type, count=20):
    """The first ``count`` photos (by product id) of an article type, prepared."""
    with open(folder / "styles.csv", newline="") as file:
        ids = sorted(int(row[0]) for row in csv.reader(file) if len(row) > 4 and row[4] == article_type)
    paths = [folder / "images" / f"{pk}.jpg" for pk in ids]
    return [prepare_image(path) for path in paths if path.exists()][:count]


@pytest.fixture(scope="module")
def embedder():
    return get_embedder()


def test_batch_plan_pads_only_the_last_batch_to_a_power_of_two():
    assert batch_plan(0, 16) == []
    assert batch_plan(1, 16) == [1]
    assert batch_plan(3, 16) == [4]
    assert batch_plan(16, 16) == [16]
    assert batch_plan(17, 16) == [16, 1]
    assert batch_plan(37, 16) == [16, 16, 8]
    assert batch_plan(11, 10) == [10, 1]


def test_importing_the_embedding_package_does_not_load_tensorflow():
    code = "import recommender.embedding, sys; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    assert result.stdout.strip() == "False"


def test_unknown_model_name_is_a_configuration_error(settings):
    settings.EMBEDDING_MODEL = "vgg16"
    with pytest.raises(ImproperlyConfigured, match="efficientnet_lite0, resnet50"):
        get_embedder()


def test_resnet50_without_its_weights_file_is_a_clear_configuration_error(settings, tmp_path):
    settings.EMBEDDING_MODEL = "resnet50"
    settings.RESNET50_WEIGHTS_PATH = ""
    with pytest.raises(ImproperlyConfigured, match="RESNET50_WEIGHTS_PATH is not set"):
        get_embedder()
    settings.RESNET50_WEIGHTS_PATH = str(tmp_path / "missing_notop.h5")
    with pytest.raises(ImproperlyConfigured, match="not a file"):
        get_embedder()


@pytest.mark.slow
def test_resnet50_runs_from_a_local_weights_file(settings, tmp_path):
    # Untrained weights in the file layout Keras expects: the real ImageNet file cannot
    # be downloaded here, but everything around it can be exercised.
    _, keras = load_tensorflow()
    weights = tmp_path / "resnet50_notop.weights.h5"
    keras.applications.ResNet50(weights=None, include_top=False, pooling="avg").save_weights(weights)

    resnet = build_resnet50_embedder(weights_path=weights)
    photo = prepare_image(reference_photo_png())
    vectors = resnet.embed_images([photo, photo])

    assert (resnet.name, resnet.dim) == ("resnet50", 2048)
    assert vectors.shape == (2, 2048) and np.isfinite(vectors).all()
    with pytest.raises(NotImplementedError, match="no ImageNet classifier"):
        resnet.classify([photo])


@pytest.mark.slow
def test_embedder_is_loaded_once_per_process(embedder):
    assert get_embedder() is embedder
    assert embedder.name == "efficientnet_lite0"
    assert embedder.dim == 1280


@pytest.mark.slow
@pytest.mark.parametrize("article_type", sorted(EXPECTED_CLASSES))
def test_imagenet_head_names_catalogue_products(embedder, fashion_dev, article_type):
    classes, required_rate = EXPECTED_CLASSES[article_type]
    photos = catalogue_photos(fashion_dev, article_type)
    assert len(photos) == 20

    top5 = embedder.classify(photos, top=5)

    rate = np.mean([bool(classes & set(row)) for row in top5])
    assert rate >= required_rate, f"{article_type}: {rate:.0%} named correctly in the top 5"


@pytest.mark.slow
def test_nearest_catalogue_neighbour_is_usually_the_same_kind_of_product(embedder, fashion_dev):
    types = ["Watches", "Sunglasses", "Sandals", "Backpacks", "Tshirts", "Jeans", "Handbags", "Casual Shoes"]
    labels, vectors = [], []
    for article_type in types:
        photos = catalogue_photos(fashion_dev, article_type)
        labels += [article_type] * len(photos)
        vectors.append(l2_normalise(embedder.embed_images(photos)))
    labels = np.array(labels)
    similarities = np.concatenate(vectors) @ np.concatenate(vectors).T
    np.fill_diagonal(similarities, -1)
    same_type = np.mean(labels[similarities.argmax(axis=1)] == labels)
    # Measured 0.94 on these 160 photos; chance is 1/8.
    assert same_type >= 0.85


@pytest.mark.slow
def test_reference_photo_still_embeds_to_the_stored_vector(embedder):
    expected = np.load(REFERENCE_EMBEDDING)

    actual = embedder.embed_one(prepare_image(reference_photo_png()))

    assert actual.shape == expected.shape == (1280,)
    assert actual.dtype == np.float32
    # Tolerance covers float rounding across CPUs; conversion or preprocessing changes
    # (resize filter, padding colour, input scaling) move the vector far more.
    cosine = float(l2_normalise(actual) @ l2_normalise(expected))
    assert cosine > 0.9999
    np.testing.assert_allclose(actual, expected, atol=2e-3 * np.abs(expected).max())


@pytest.mark.slow
def test_vectors_do_not_depend_on_batch_size_or_padding(embedder, fashion_dev):
    photos = catalogue_photos(fashion_dev, "Watches", count=19)

    alone = np.stack([embedder.embed_one(photo) for photo in photos[:3]])
    batched = embedder.embed_images(photos, batch_size=8)

    assert batched.shape == (19, 1280) and batched.dtype == np.float32
    np.testing.assert_allclose(batched[:3], alone, atol=1e-4)
    assert embedder.embed_images([]).shape == (0, 1280)


@pytest.mark.slow
def test_many_batch_sizes_reuse_a_few_traced_graphs(settings):
    # The Keras model the served one is converted from (and the embedding bench runs).
    embedder = load_keras_embedder("efficientnet_lite0", cache_dir=settings.MODEL_CACHE_DIR)
    blank = np.full((224, 224, 3), 255, dtype=np.uint8)
    for count in range(1, 12):
        embedder.embed_images([blank] * count, batch_size=8)
    # Batch shapes 1, 2, 4 and 8 here (and 16 in other tests) only: not a new trace,
    # which takes seconds, for every number of images.
    assert embedder._features.experimental_get_tracing_count() <= 5


@pytest.mark.slow
def test_images_not_prepared_by_prepare_image_are_refused(embedder):
    with pytest.raises(ValueError, match="224x224x3 uint8"):
        embedder.embed_images([np.zeros((100, 100, 3), dtype=np.uint8)])
    with pytest.raises(ValueError, match="224x224x3 uint8"):
        embedder.embed_one(np.zeros((224, 224, 3), dtype=np.float32))


@pytest.mark.slow
def test_conversion_is_cached_on_disk_and_reused(tmp_path, monkeypatch):
    cache_dir = tmp_path / "models"
    photo = prepare_image(reference_photo_png())[None].astype(np.float32)

    converted = efficientnet_lite.load_efficientnet_lite0(cache_dir=cache_dir)
    cached_files = list(cache_dir.iterdir())
    assert [path.name for path in cached_files] == [
        f"efficientnet_lite0-{efficientnet_lite.weights_fingerprint()[:12]}-r1.weights.h5"
    ]

    def no_second_conversion(path):
        raise AssertionError("the PyTorch file was read again despite the cache")

    monkeypatch.setattr(efficientnet_lite, "read_legacy_state_dict", no_second_conversion)
    from_cache = efficientnet_lite.load_efficientnet_lite0(cache_dir=cache_dir)

    preprocess = efficientnet_lite.preprocess_input
    np.testing.assert_allclose(
        np.asarray(from_cache(preprocess(photo))), np.asarray(converted(preprocess(photo))), atol=1e-6
    )
    assert list(cache_dir.iterdir()) == cached_files


@pytest.mark.slow
def test_damaged_cache_file_is_converted_again(tmp_path):
    cache_dir = tmp_path / "models"
    cache = efficientnet_lite.cached_weights_path(efficientnet_lite.weights_fingerprint(), cache_dir)
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"half-written file")

    model = efficientnet_lite.load_efficientnet_lite0(include_top=True, cache_dir=cache_dir)

    assert cache.stat().st_size > 10_000_000
    assert model.output_shape == (None, 1000)
    assert [path.name for path in cache.parent.iterdir()] == [cache.name]


def _reference_forward(state, image):
    """EfficientNet-Lite0 evaluated in plain numpy straight from the PyTorch tensors
    (OIHW layout, TensorFlow-style "same" padding as in the reference implementation)."""
    from recommender.embedding.efficientnet_lite import BLOCKS

    def conv(x, weight, stride=1, depthwise=False):
        kernel = weight.shape[-1]
        padding = []
        for size in x.shape[1:]:
            total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
            padding.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0)] + padding)
        windows = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(1, 2))
        windows = windows[:, ::stride, ::stride]
        if depthwise:
            return np.einsum("chwij,cij->chw", windows, weight[:, 0])
        return np.einsum("chwij,ocij->ohw", windows, weight, optimize=True)

    def batch_norm(x, prefix):
        mean, var = state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"]
        gamma, beta = state[f"{prefix}.weight"], state[f"{prefix}.bias"]
        return ((x.T - mean) / np.sqrt(var + 1e-3) * gamma + beta).T

    def relu6(x):
        return np.clip(x, 0, 6)

    x = ((image.astype(np.float64) - 127) / 128).transpose(2, 0, 1)
    x = relu6(batch_norm(conv(x, state["_conv_stem.weight"], 2), "_bn0"))
    for index, (expand, _kernel, stride, _channels) in enumerate(BLOCKS):
        block = f"_blocks.{index}."
        shortcut = x
        if expand != 1:
            x = relu6(batch_norm(conv(x, state[block + "_expand_conv.weight"]), block + "_bn0"))
        x = conv(x, state[block + "_depthwise_conv.weight"], stride, depthwise=True)
        x = relu6(batch_norm(x, block + "_bn1"))
        x = batch_norm(conv(x, state[block + "_project_conv.weight"]), block + "_bn2")
        if x.shape == shortcut.shape and stride == 1:
            x = x + shortcut
    x = relu6(batch_norm(conv(x, state["_conv_head.weight"]), "_bn1"))
    return x.mean(axis=(1, 2))


@pytest.mark.slow
def test_keras_model_computes_what_the_pytorch_weights_define(embedder):
    from recommender.embedding.efficientnet_lite import pytorch_weights_path
    from recommender.embedding.weights import read_legacy_state_dict

    image = prepare_image(reference_photo_png())
    expected = _reference_forward(read_legacy_state_dict(pytorch_weights_path()), image)

    np.testing.assert_allclose(embedder.embed_one(image), expected, atol=1e-4)
