"""The trained head: Keras trains it, numpy serves it with the same outputs; seeded runs
repeat; an interrupted run resumes from its checkpoint."""

import numpy as np
import pytest

from recommender.embedding import head as head_module
from recommender.embedding.head import HeadConfig, HeadWeights, TrainingSet, head_inputs, train_head

pytestmark = pytest.mark.slow


def toy_set(seed=0, per_class=30):
    """Three article types x two colours, separable in the CNN part of the input."""
    rng = np.random.default_rng(seed)
    types, colours = ["Shirts", "Jeans", "Watches"], ["Blue", "Red"]
    cnn, colour, type_labels, colour_labels = [], [], [], []
    for t in range(3):
        for c in range(2):
            cnn.append(np.eye(3, 32)[t] * 5 + rng.normal(0, 1, (per_class, 32)))
            colour.append(np.eye(2, 8)[c] * 5 + rng.normal(0, 0.5, (per_class, 8)))
            type_labels += [t] * per_class
            colour_labels += [c] * per_class
    type_labels, colour_labels = np.array(type_labels), np.array(colour_labels)
    n = len(type_labels)
    targets = np.zeros((n, 3), dtype=np.float32)
    targets[np.arange(n), type_labels] = 1
    labels = {
        "article_type": type_labels,
        "base_colour": colour_labels,
        "type_colour": type_labels * 2 + colour_labels,
        "gender": np.full(n, -1),
        "sub_category": np.full(n, -1),
        "usage": np.full(n, -1),
    }
    classes = {
        "article_type": types,
        "base_colour": colours,
        "type_colour": [f"{t}|{c}" for t in types for c in colours],
        "gender": ["Men"],
        "sub_category": ["Topwear"],
        "usage": ["Casual"],
    }
    inputs = head_inputs(np.concatenate(cnn), np.concatenate(colour))
    return TrainingSet(inputs, labels, classes, targets, np.ones(n, dtype=np.float32))


SMALL = dict(hidden=64, dim=16, epochs=6, batch_size=32)


def test_numpy_head_matches_the_keras_model_and_survives_a_file_round_trip(tmp_path):
    data = toy_set()
    config = HeadConfig(**SMALL)
    model = head_module.build_head_model(data.inputs.shape[1], data.classes, config)
    weights = head_module.weights_of(model, data.classes, config)
    expected = head_module.keras_search_vectors(model, data.inputs)

    np.testing.assert_allclose(weights.search_vectors(data.inputs), expected, atol=1e-5)
    weights.save(tmp_path / "head.npz")
    loaded = HeadWeights.load(tmp_path / "head.npz")
    np.testing.assert_allclose(loaded.search_vectors(data.inputs), expected, atol=1e-5)
    assert loaded.classes["article_type"] == ["Shirts", "Jeans", "Watches"]


def test_trained_head_predicts_types_and_colours_and_groups_them(tmp_path):
    data = toy_set()
    weights, resumed = train_head(data, HeadConfig(**{**SMALL, "epochs": 15}))
    vectors = weights.search_vectors(data.inputs)

    assert resumed == 0
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    predicted = weights.log_probs(vectors).argmax(axis=1)
    assert (predicted == data.labels["article_type"]).mean() > 0.95
    assert weights.predict(vectors[0], "base_colour", top=1)[0][0] == "Blue"
    # The nearest other example shares type and colour.
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(axis=1)
    assert (data.labels["type_colour"][nearest] == data.labels["type_colour"]).mean() > 0.9


def test_the_same_seed_gives_the_same_head():
    data = toy_set()
    first, _ = train_head(data, HeadConfig(**SMALL, seed=3))
    second, _ = train_head(data, HeadConfig(**SMALL, seed=3))
    other, _ = train_head(data, HeadConfig(**SMALL, seed=4))

    np.testing.assert_array_equal(first.arrays["embed_kernel"], second.arrays["embed_kernel"])
    assert not np.array_equal(first.arrays["embed_kernel"], other.arrays["embed_kernel"])


def test_an_interrupted_run_resumes_from_its_last_epoch(tmp_path):
    data = toy_set()
    config = HeadConfig(**SMALL)
    seen = []

    def stop_after_three(epoch, logs):
        seen.append(epoch)
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_head(data, config, checkpoint_dir=tmp_path, on_epoch=stop_after_three)
    resumed_epochs = []
    weights, resumed = train_head(
        data, config, checkpoint_dir=tmp_path, on_epoch=lambda epoch, logs: resumed_epochs.append(epoch)
    )

    assert seen == [1, 2, 3]
    assert resumed == 3
    assert resumed_epochs == [4, 5, 6]
    assert (
        weights.log_probs(weights.search_vectors(data.inputs)).argmax(axis=1) == data.labels["article_type"]
    ).mean() > 0.7  # chance is 1/3


def test_a_head_file_of_another_revision_is_refused(tmp_path, monkeypatch):
    data = toy_set()
    config = HeadConfig(**SMALL)
    weights = head_module.weights_of(
        head_module.build_head_model(data.inputs.shape[1], data.classes, config), data.classes, config
    )
    weights.save(tmp_path / "head.npz")
    monkeypatch.setattr(head_module, "HEAD_REVISION", head_module.HEAD_REVISION + 1)

    with pytest.raises(ValueError, match="revision"):
        HeadWeights.load(tmp_path / "head.npz")
