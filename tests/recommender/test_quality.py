"""Visual search quality: the protocols (on small made-up data) and the shipped colour
weight on the real catalogue sample and real shopper photos.

The real-data numbers come from bench/bench_quality.py (colour weight 0.065):
catalogue leave-one-out P@5 0.700 same article type, 0.271 same type and colour (CNN
alone: 0.705 / 0.221); shopper photos P@5 "right kind" 0.506 (colour histogram alone
0.140; shoes 0.89, T-shirts 0.72, trousers 0.63).
"""

import numpy as np
import pytest
from django.conf import settings

from quality import evaluation
from recommender import training
from recommender.embedding import protocols
from recommender.embedding.head import HeadConfig, train_head
from recommender.search_space import SearchSpace, default_space


def sample(vectors, colours, **labels):
    """A LabelledImages whose CNN vectors are ``vectors`` and colour vectors ``colours``."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return evaluation.LabelledImages(
        keys=list(range(len(vectors))),
        labels={name: np.asarray(values) for name, values in labels.items()},
        cnn=vectors,
        colour=np.asarray(colours, dtype=np.float32),
    )


RED, BLUE = [1.0, 0.0], [0.0, 1.0]


def test_leave_one_out_counts_neighbours_of_the_same_type_and_colour():
    # Two shirt shapes close together, two shoe shapes close together; one shirt is blue.
    catalogue = sample(
        [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0], [0.0, 0.1, 0.9]],
        [RED, BLUE, RED, RED],
        article_type=["Shirts", "Shirts", "Shoes", "Shoes"],
        base_colour=["Red", "Blue", "Red", "Red"],
    )
    shape_only = evaluation.leave_one_out_precision(catalogue, 0.0, k=1)
    assert shape_only == {"article_type": 1.0, "article_type_and_colour": 0.5}
    # With colour counting for everything the red shirt's nearest is a red shoe.
    colour_only = evaluation.leave_one_out_precision(catalogue, 1.0, k=1)
    assert colour_only["article_type"] < 1.0


def test_the_chosen_colour_weight_is_the_best_for_colour_among_those_keeping_the_type():
    sweep = [
        {"colour_weight": 0.0, "article_type": 0.72, "article_type_and_colour": 0.22},
        {"colour_weight": 0.1, "article_type": 0.71, "article_type_and_colour": 0.28},
        {"colour_weight": 0.2, "article_type": 0.70, "article_type_and_colour": 0.29},
        {"colour_weight": 0.3, "article_type": 0.68, "article_type_and_colour": 0.31},
    ]
    assert evaluation.choose_colour_weight(sweep) == 0.2
    assert evaluation.choose_colour_weight(sweep, min_type=0.75) is None


def test_shopper_photo_results_count_every_article_type_meant_by_the_label():
    catalogue = sample(
        [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]],
        [RED, RED, RED],
        article_type=["Jeans", "Track Pants", "Heels"],
    )
    photos = sample([[1.0, 0.05], [0.05, 1.0]], [RED, RED], label=["Pants", "Pants"])
    result = evaluation.shopper_photo_precision(photos, catalogue, 0.0, k=2)
    assert result["per_label"]["Pants"] == {"p_at_k": 0.75, "queries": 2}
    assert result["overall"] == 0.75


def test_catalogue_sample_is_read_with_the_importers_reader(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "styles.csv").write_text(
        "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName\n"
        "1,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Shirt, with a comma\n"
        "2,Men,Footwear,Shoes,Casual Shoes,Black,Fall,2011,Casual,Shoes\n"
        "3,Women,Apparel,Topwear,Tops,Red,Fall,2011,Casual,Top without a photo\n"
    )
    for pk in (1, 2):
        (tmp_path / "images" / f"{pk}.jpg").write_bytes(b"")
    rows = evaluation.catalogue_sample_rows(tmp_path)
    assert [(pk, kind, colour) for pk, _, kind, colour in rows] == [
        (1, "Shirts", "Navy Blue"),
        (2, "Casual Shoes", "Black"),
    ]


def test_shopper_photos_without_a_catalogue_counterpart_or_of_kids_are_left_out(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images.csv").write_text(
        "image,sender_id,label,kids\na,1,T-Shirt,False\nb,1,Body,True\nc,2,Shoes,True\nd,3,Not sure,False\n"
    )
    for name in "abcd":
        (tmp_path / "images" / f"{name}.jpg").write_bytes(b"")
    assert [row[0] for row in evaluation.shopper_photo_rows(tmp_path)] == ["a"]
    assert [row[0] for row in evaluation.shopper_photo_rows(tmp_path, include_kids=True)] == ["a", "c"]


@pytest.mark.slow
def test_similar_products_share_the_article_type_and_often_the_colour(dev_catalogue):
    result = evaluation.leave_one_out_precision(dev_catalogue, settings.COLOUR_WEIGHT)
    assert result["article_type"] >= 0.70
    assert result["article_type_and_colour"] >= 0.27


@pytest.mark.slow
def test_colour_makes_same_coloured_products_come_up_more_often_than_shape_alone(dev_catalogue):
    shape_only = evaluation.leave_one_out_precision(dev_catalogue, 0.0)
    shipped = evaluation.leave_one_out_precision(dev_catalogue, settings.COLOUR_WEIGHT)
    assert shipped["article_type_and_colour"] >= shape_only["article_type_and_colour"] + 0.04


@pytest.mark.slow
def test_shopper_photos_find_the_right_kind_of_product_far_better_than_colour_alone(
    dev_catalogue, shopper_photos
):
    shipped = evaluation.shopper_photo_precision(shopper_photos, dev_catalogue, settings.COLOUR_WEIGHT)
    colour_only = evaluation.shopper_photo_precision(shopper_photos, dev_catalogue, 1.0)
    assert shipped["queries"] >= 1000
    assert shipped["overall"] >= 0.45
    assert shipped["overall"] >= colour_only["overall"] + 0.25
    per_label = {label: result["p_at_k"] for label, result in shipped["per_label"].items()}
    assert per_label["Shoes"] >= 0.8
    assert per_label["T-Shirt"] >= 0.65
    assert per_label["Pants"] >= 0.5


# The trained head (train_recommender), side by side with the untrained default on the
# same split: a fifth of the products held out by a hash of the id, half of the shopper
# photos (by a hash of the name) used for training, the other half measured.
# bench/bench_training.py measures the same through the database and the command.


@pytest.fixture(scope="module")
def trained_against_default(dev_catalogue, shopper_photos):
    catalogue = training.Catalogue(
        ids=np.asarray(dev_catalogue.keys),
        cnn=dev_catalogue.cnn,
        colour=dev_catalogue.colour,
        labels={name: np.asarray(values, dtype=str) for name, values in dev_catalogue.labels.items()},
        held_out=np.array([protocols.held_out(int(key)) for key in dev_catalogue.keys]),
    )
    photos = training.ShopperPhotos(
        names=list(shopper_photos.keys),
        labels=np.asarray(shopper_photos.labels["label"]),
        cnn=shopper_photos.cnn,
        colour=shopper_photos.colour,
        held_out=np.array([protocols.held_out(str(key), parts=2) for key in shopper_photos.keys]),
    )
    weights, _ = train_head(training.training_set(catalogue, photos, HeadConfig()), HeadConfig())
    trained = SearchSpace(name="trained", backbone="efficientnet_lite0", version_id=0, head=weights)
    return (
        training.evaluate(trained, catalogue, photos),
        training.evaluate(default_space("efficientnet_lite0"), catalogue, photos),
    )


@pytest.mark.slow
def test_the_trained_head_finds_the_same_type_and_colour_far_more_often(trained_against_default):
    trained, default = (result["catalogue"] for result in trained_against_default)
    assert trained["queries"] >= 800
    assert trained["article_type"] >= default["article_type"] + 0.08
    assert trained["article_type_and_colour"] >= default["article_type_and_colour"] + 0.15


@pytest.mark.slow
def test_the_trained_head_finds_the_right_kind_for_shopper_photos(trained_against_default):
    trained = trained_against_default[0]["shopper_photos"]
    assert trained["queries"] >= 450
    assert trained["overall"] >= 0.65
    # Every kind the catalogue stocks (20+ products) and that has enough photos to measure.
    weak = {
        label: row["p_at_k"]
        for label, row in trained["per_label"].items()
        if row["catalogue_products"] >= 20 and row["queries"] >= 10 and row["p_at_k"] < 0.30
    }
    assert weak == {}
