"""Colour signatures and how they are mixed with CNN vectors."""

import csv

import numpy as np
import pytest

from recommender.embedding import COLOUR_DIM, colour_descriptor, combine, l2_normalise, prepare_image


def product_on_white(colour, box=(40, 30, 190, 200), size=224):
    pixels = np.full((size, size, 3), 255, dtype=np.uint8)
    top, left, bottom, right = box
    pixels[top:bottom, left:right] = colour
    return pixels


def similarity(a, b):
    return float(colour_descriptor(a) @ colour_descriptor(b))


def test_signature_is_a_small_unit_length_float_vector():
    signature = colour_descriptor(product_on_white((200, 30, 30)))
    assert signature.shape == (COLOUR_DIM,)
    assert 64 <= COLOUR_DIM <= 128
    assert signature.dtype == np.float32
    assert np.linalg.norm(signature) == pytest.approx(1.0, abs=1e-5)


def test_red_and_blue_products_differ_while_two_reds_match():
    red = product_on_white((200, 30, 30))
    darker_red = product_on_white((180, 25, 35))
    blue = product_on_white((30, 40, 190))
    assert similarity(red, darker_red) > 0.9
    assert similarity(red, blue) < 0.1


def test_white_background_does_not_count():
    small_red = product_on_white((200, 30, 30), box=(100, 100, 130, 120))
    large_red = product_on_white((200, 30, 30), box=(10, 10, 214, 214))
    small_blue = product_on_white((30, 40, 190), box=(100, 100, 130, 120))
    assert similarity(small_red, large_red) > 0.95
    assert similarity(small_red, small_blue) < 0.1


def test_black_grey_and_navy_are_told_apart():
    black = product_on_white((15, 15, 15))
    grey = product_on_white((128, 128, 128))
    navy = product_on_white((20, 30, 90))
    assert similarity(black, grey) < 0.5
    assert similarity(black, navy) < 0.5
    assert similarity(grey, navy) < 0.5


def test_white_product_on_white_is_described_by_all_its_pixels():
    white_shirt = product_on_white((245, 245, 245))
    black_shirt = product_on_white((10, 10, 10))
    signature = colour_descriptor(white_shirt)
    assert np.isfinite(signature).all()
    assert float(signature @ colour_descriptor(black_shirt)) < 0.1


def test_same_coloured_catalogue_products_are_closer_than_different_colours(fashion_dev):
    wanted = ("Black", "White", "Blue", "Red", "Green", "Yellow", "Pink")
    by_colour = {colour: [] for colour in wanted}
    with open(fashion_dev / "styles.csv", newline="") as file:
        for row in csv.DictReader(file):
            colour = row["baseColour"]
            path = fashion_dev / "images" / f"{row['id']}.jpg"
            if (
                row["masterCategory"] == "Apparel"
                and colour in by_colour
                and len(by_colour[colour]) < 40
                and path.exists()
            ):
                by_colour[colour].append(colour_descriptor(prepare_image(path)))
    labels = np.array([colour for colour, items in by_colour.items() for _ in items])
    signatures = np.stack([s for items in by_colour.values() for s in items])
    similarities = signatures @ signatures.T
    np.fill_diagonal(similarities, -1)
    nearest_same_colour = np.mean(labels[similarities.argmax(axis=1)] == labels)
    # Chance is about 1/7. Many photos show a model (skin, hair, jeans) and the labels are
    # one colour for patterned items; 0.68 is measured on this sample.
    assert nearest_same_colour >= 0.5


def test_combined_vector_is_unit_length_and_mixes_similarities_by_weight():
    rng = np.random.default_rng(0)
    cnn_a, cnn_b = rng.normal(size=(2, 1280)).astype(np.float32)
    colour_a = colour_descriptor(product_on_white((200, 30, 30)))
    colour_b = colour_descriptor(product_on_white((30, 40, 190)))
    cnn_cos = float(l2_normalise(cnn_a) @ l2_normalise(cnn_b))
    colour_cos = float(colour_a @ colour_b)

    for weight in (0.0, 0.3, 1.0):
        a = combine(cnn_a, colour_a, weight)
        b = combine(cnn_b, colour_b, weight)
        assert a.shape == (1280 + COLOUR_DIM,)
        assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
        assert float(a @ b) == pytest.approx((1 - weight) * cnn_cos + weight * colour_cos, abs=1e-5)


def test_combine_works_on_batches_and_rejects_bad_weights():
    rng = np.random.default_rng(1)
    cnn = rng.normal(size=(4, 1280))
    colours = np.stack([colour_descriptor(product_on_white((40 * i, 100, 200 - 40 * i))) for i in range(4)])
    batch = combine(cnn, colours, 0.2)
    assert batch.shape == (4, 1280 + COLOUR_DIM)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batch[2], combine(cnn[2], colours[2], 0.2), atol=1e-6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        combine(cnn, colours, 1.5)


def test_l2_normalise_leaves_zero_vectors_at_zero():
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert out.dtype == np.float32
