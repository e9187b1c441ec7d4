"""The trained projection head: a small network on the frozen backbone features (the CNN's
pooled vector and the colour signature of a photo) whose output is the search vector.

It is defined and trained in Keras on the shop's own labels (article type, colour,
gender, subcategory, usage) and, when labelled shopper photos are given, on those too, so
a phone photo lands near the catalogue products of its kind. Every task is a cosine
softmax over the unit-length output, so products of one class gather around one
direction and the colour weight is learnt rather than tuned. The trained weights are
served by :class:`HeadWeights` in plain numpy (no TensorFlow in web processes); its
outputs match the Keras model's.
"""

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .backend import load_tensorflow
from .vector_math import l2_normalise

# Bump when the network or its inputs change: versions of another revision are not loaded.
HEAD_REVISION = 1
# The tasks the head learns, with how much each counts. "type_colour" (article type and
# base colour together) pulls a red shirt nearer red shirts than other shirts.
DEFAULT_TASK_WEIGHTS = {
    "article_type": 2.0,
    "base_colour": 0.5,
    "type_colour": 1.0,
    "gender": 0.3,
    "sub_category": 0.3,
    "usage": 0.2,
}
# The tasks whose predictions are shown to shoppers ("Looks like: T-shirt, blue").
SHOWN_TASKS = ("article_type", "base_colour")


@dataclass
class HeadConfig:
    """Hyper-parameters of the head and its training (defaults measured on the real
    catalogue sample with bench/bench_training.py)."""

    hidden: int = 1024
    dim: int = 256
    input_dropout: float = 0.1
    dropout: float = 0.3
    scale: float = 16.0
    epochs: int = 40
    batch_size: int = 128
    learning_rate: float = 1e-3
    task_weights: dict = field(default_factory=lambda: dict(DEFAULT_TASK_WEIGHTS))
    # How much a labelled shopper photo counts against a catalogue product.
    photo_weight: float = 1.0
    # Searches re-rank their nearest candidates by the predicted article type of the
    # query: score = cosine + rerank_weight * log p(candidate's type).
    rerank_weight: float = 0.1
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainingSet:
    """What the head learns from: one row of backbone inputs per example.

    ``labels[task]`` holds class numbers (-1 where an example has no label for the task)
    and ``classes[task]`` their names. Article types are learnt from ``type_targets``: one
    row per example with 1 for every type that is right for it (one type for a catalogue
    product, several for a shopper photo labelled "Pants").
    """

    inputs: np.ndarray
    labels: dict
    classes: dict
    type_targets: np.ndarray
    example_weights: np.ndarray

    def __len__(self):
        return len(self.inputs)


def head_inputs(cnn, colour) -> np.ndarray:
    """The head's input rows for CNN and colour vectors (one row each)."""
    return np.concatenate([l2_normalise(np.atleast_2d(cnn)), l2_normalise(np.atleast_2d(colour))], axis=-1)


class HeadWeights:
    """A trained head in numpy: search vectors and class predictions for backbone inputs."""

    def __init__(self, arrays: dict, classes: dict, scale: float, rerank_weight: float):
        self.arrays = {name: np.asarray(value, dtype=np.float32) for name, value in arrays.items()}
        self.classes = {task: list(names) for task, names in classes.items()}
        self.scale = float(scale)
        self.rerank_weight = float(rerank_weight)
        self.type_index = {name: i for i, name in enumerate(self.classes["article_type"])}

    @property
    def dim(self) -> int:
        return self.arrays["embed_kernel"].shape[1]

    def search_vectors(self, inputs) -> np.ndarray:
        """Unit-length search vectors for head input rows."""
        a = self.arrays
        hidden = np.maximum(
            np.atleast_2d(inputs).astype(np.float32) @ a["hidden_kernel"] + a["hidden_bias"], 0
        )
        return l2_normalise(hidden @ a["embed_kernel"] + a["embed_bias"])

    def log_probs(self, vectors, task="article_type") -> np.ndarray:
        """Log-probabilities of the task's classes for search vectors (one row each)."""
        logits = self.scale * (np.atleast_2d(vectors) @ self.arrays[f"{task}_prototypes"])
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def predict(self, vector, task, top=3) -> list[tuple[str, float]]:
        """The ``top`` most likely classes of one search vector, with probabilities."""
        probs = np.exp(self.log_probs(vector, task)[0])
        best = np.argsort(-probs)[:top]
        return [(self.classes[task][i], float(probs[i])) for i in best]

    def save(self, path) -> None:
        """Write the weights to an .npz file (read back without pickling)."""
        meta = {
            "revision": HEAD_REVISION,
            "classes": self.classes,
            "scale": self.scale,
            "rerank_weight": self.rerank_weight,
        }
        tmp = Path(f"{path}.tmp.npz")
        np.savez(tmp, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **self.arrays)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> "HeadWeights":
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes().decode())
            if meta["revision"] != HEAD_REVISION:
                raise ValueError(f"{path} holds a head of revision {meta['revision']}, not {HEAD_REVISION}")
            arrays = {name: data[name] for name in data.files if name != "meta"}
        return cls(arrays, meta["classes"], meta["scale"], meta["rerank_weight"])


def _keras_parts():
    """The Keras pieces of the head, defined on first use (TensorFlow loads here)."""
    tf, keras = load_tensorflow()
    if "CosineSoftmax" in _parts:
        return tf, keras, _parts

    @keras.saving.register_keras_serializable(package="storefront")
    class CosineSoftmax(keras.layers.Layer):
        """Logits = scale * cosine between the input and one learnt direction per class."""

        def __init__(self, classes, scale, **kwargs):
            super().__init__(**kwargs)
            self.classes = classes
            self.scale = scale

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.classes), initializer="glorot_uniform")

        def call(self, inputs):
            return self.scale * tf.matmul(inputs, tf.nn.l2_normalize(self.kernel, axis=0))

        def get_config(self):
            return {**super().get_config(), "classes": self.classes, "scale": self.scale}

    @keras.saving.register_keras_serializable(package="storefront")
    def any_of_loss(targets, logits):
        """-log P(any right class): one class for a product, several for a shopper photo."""
        return tf.reduce_logsumexp(logits, -1) - tf.reduce_logsumexp(logits + tf.math.log(targets + 1e-9), -1)

    _parts.update(CosineSoftmax=CosineSoftmax, any_of_loss=any_of_loss)
    return tf, keras, _parts


_parts = {}


def build_head_model(input_dim, classes, config: HeadConfig):
    """The Keras head: inputs -> hidden ReLU layer -> unit search vector -> one cosine
    softmax per task."""
    tf, keras, parts = _keras_parts()
    inputs = keras.Input((input_dim,), name="backbone")
    hidden = keras.layers.Dropout(config.input_dropout)(inputs)
    hidden = keras.layers.Dense(config.hidden, activation="relu", name="hidden")(hidden)
    hidden = keras.layers.Dropout(config.dropout)(hidden)
    vector = keras.layers.UnitNormalization(name="search_vector")(
        keras.layers.Dense(config.dim, name="embed")(hidden)
    )
    outputs = {
        task: parts["CosineSoftmax"](len(classes[task]), config.scale, name=task)(vector)
        for task in config.task_weights
    }
    model = keras.Model(inputs, outputs)
    losses = {
        task: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for task in config.task_weights
    }
    losses["article_type"] = parts["any_of_loss"]
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate), loss=losses, loss_weights=config.task_weights
    )
    return model


def train_head(
    data: TrainingSet,
    config: HeadConfig,
    checkpoint_dir=None,
    on_epoch: Callable[[int, dict], object] | None = None,
) -> tuple[HeadWeights, int]:
    """Train a head on ``data``; returns its weights and the epoch training resumed from.

    With ``checkpoint_dir`` the model is saved after every epoch and a later call with the
    same folder continues where an interrupted run stopped. The same seed and data give
    the same weights.
    """
    tf, keras, parts = _keras_parts()
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    checkpoint = Path(checkpoint_dir) / "head.keras" if checkpoint_dir else None
    state = Path(checkpoint_dir) / "state.json" if checkpoint_dir else None
    start_epoch = 0
    if checkpoint and checkpoint.exists() and state.exists():
        model = keras.models.load_model(checkpoint)
        start_epoch = json.loads(state.read_text())["epochs_done"]
    else:
        model = build_head_model(data.inputs.shape[1], data.classes, config)

    targets = {"article_type": data.type_targets.astype(np.float32)}
    weights = {"article_type": data.example_weights.astype(np.float32)}
    for task in config.task_weights:
        if task == "article_type":
            continue
        labels = data.labels[task]
        targets[task] = np.maximum(labels, 0)
        weights[task] = (labels >= 0).astype(np.float32) * data.example_weights

    callbacks = []
    if checkpoint:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        callbacks.append(_CheckpointEachEpoch(keras, checkpoint, state))
    if on_epoch:
        callbacks.append(
            keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: on_epoch(epoch + 1, logs))
        )
    if start_epoch < config.epochs:
        model.fit(
            data.inputs.astype(np.float32),
            targets,
            sample_weight=weights,
            batch_size=config.batch_size,
            epochs=config.epochs,
            initial_epoch=start_epoch,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
    return weights_of(model, data.classes, config), start_epoch


def _CheckpointEachEpoch(keras, checkpoint, state):  # noqa: N802 (a callback class made on demand)
    class CheckpointEachEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            tmp = checkpoint.with_name("head.tmp.keras")
            self.model.save(tmp)
            os.replace(tmp, checkpoint)
            state.write_text(json.dumps({"epochs_done": epoch + 1}))

    return CheckpointEachEpoch()


def weights_of(model, classes, config: HeadConfig) -> HeadWeights:
    """The numpy weights of a trained Keras head."""
    hidden_kernel, hidden_bias = model.get_layer("hidden").get_weights()
    embed_kernel, embed_bias = model.get_layer("embed").get_weights()
    arrays = {
        "hidden_kernel": hidden_kernel,
        "hidden_bias": hidden_bias,
        "embed_kernel": embed_kernel,
        "embed_bias": embed_bias,
    }
    for task in SHOWN_TASKS:
        (kernel,) = model.get_layer(task).get_weights()
        arrays[f"{task}_prototypes"] = l2_normalise(kernel, axis=0)
    kept = {task: classes[task] for task in SHOWN_TASKS}
    return HeadWeights(arrays, kept, config.scale, config.rerank_weight)


def keras_search_vectors(model, inputs) -> np.ndarray:
    """The Keras model's own search vectors (to check the numpy head against)."""
    _, keras, _ = _keras_parts()
    return keras.Model(model.input, model.get_layer("search_vector").output)(inputs, training=False).numpy()
