"""Importing a Keras model: its head made a softmax layer the export can read (the same
probabilities), and what cannot serve refused by name."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from training import architectures, imported
from training.data import DataError


def functional(head: str) -> keras.Model:
    inp = keras.Input((12, 12, 3))
    x = layers.Conv2D(4, 3, name="c1")(inp)
    a = layers.Conv2D(4, 3, padding="same", name="a")(x)
    a = layers.BatchNormalization(name="a_bn")(a)
    b = layers.Conv2D(4, 1, name="b")(x)
    b = layers.BatchNormalization(name="b_bn")(b)
    x = layers.Add(name="add")([layers.ReLU(name="a_relu")(a), b])
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if head == "logits":
        return keras.Model(inp, layers.Dense(3, name="logits")(x))
    return keras.Model(inp, layers.Softmax(name="sm")(layers.Dense(3, name="logits")(x)))


@pytest.mark.parametrize("head", ["logits", "dense+softmax"])
def test_the_head_becomes_a_softmax_dense_with_the_same_answers(head: str) -> None:
    model = functional(head)
    made = imported.classifier(model)
    last = made.layers[-1]
    assert isinstance(last, layers.Dense) and last.get_config()["activation"] == "softmax"
    x = np.random.default_rng(0).uniform(0, 255, (5, 12, 12, 3)).astype(np.float32)
    out = np.asarray(model(x))
    if head == "logits":
        shifted = np.exp(out - out.max(1, keepdims=True))
        out = shifted / shifted.sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(made(x)), out, rtol=1e-5, atol=1e-6)


def test_blocks_are_followed_through_the_graph() -> None:
    """``b``'s BatchNorm is read by the join, not a ReLU: its block ends there; ``a``'s
    runs through its BatchNorm and ReLU; ``c1`` is read by two layers."""
    model = functional("logits")
    blocks = {c.name: architectures.block_output(model, c).name
              for c in architectures.conv_layers(model)}
    assert blocks == {"c1": "c1", "a": "a_relu", "b": "b_bn"}


@pytest.mark.parametrize(("model", "needle"), [
    (keras.Sequential([keras.Input((8, 8)), layers.Flatten(), layers.Dense(2)]),
     "input must be pictures"),
    (keras.Sequential([keras.Input((8, 8, 4)), layers.Conv2D(2, 3), layers.Flatten(),
                       layers.Dense(2)]), "input must be pictures"),
])
def test_inputs_that_are_not_pictures_are_refused(model: keras.Model, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        imported.classifier(model)


def test_files_that_are_not_keras_models_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="SavedModel directory"):
        imported.load(tmp_path)
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(DataError, match="not a Keras model file"):
        imported.load(tmp_path / "m.onnx")
    (tmp_path / "m.keras").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot be loaded by Keras"):
        imported.load(tmp_path / "m.keras")
