"""What the OOD score reads of a Keras classifier: each conv block's activated output
(each channel's spatial mean and standard deviation), the penultimate features, and, for
clothing, the picture itself (its block means); and the logits, from the penultimate
features through the last Dense layer. The same functions build the served graph
(``training.export``)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from training import architectures

PICTURE = "picture"  # the name of the picture's own part of the score
PICTURE_BLOCK = 4    # the picture layer's features: means of blocks this many pixels a side


def reads_picture(dataset: str) -> bool:
    """Whether the OOD score of a model of ``dataset`` reads the picture itself. Clothing:
    yes (a digit's strokes sit where no garment is dark). Digits: no, as uploads are
    centred like MNIST's, a centred garment's blocks look like a thick digit's, and the
    picture layer lowers how well the digit model's score separates clothes
    (``bench/ood.py --compare``). A folder's pictures: no (their blocks would be as many
    dimensions as a large picture has pixels over 16)."""
    return dataset == "fashion_mnist"


def adds_energy(dataset: str) -> bool:
    """Whether the OOD score of a model of ``dataset`` adds the energy term
    (``EnergyTerm``). Digits: yes; the logits tell a garment from a digit where the
    feature distances alone accepted thick strokes (``bench/ood.py --compare``: AUROC
    against Fashion-MNIST 0.9878 without it)."""
    return dataset == "mnist"


def penultimate(model: keras.Model) -> keras.Model:
    """``model`` up to the input of its last (softmax) layer: the features it classifies."""
    return keras.Model(model.inputs[0], model.layers[-1].input)


def scored_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers the OOD score reads: every conv block's activated output (the
    penultimate features come last, from ``feature_outputs``)."""
    return [architectures.block_output(model, conv)
            for conv in architectures.conv_layers(model)]


def summarise(value: Any) -> Any:
    """A layer's output as OOD features: conv maps ``[N,h,w,C]`` -> each channel's
    spatial mean and standard deviation ``[N,2C]``; flat features as they are. ``value``
    is a NumPy array or a tensor (the same function serves the fit and the graph)."""
    if len(value.shape) != 4:
        return value
    import tensorflow as tf

    mean, var = tf.nn.moments(value, axes=[1, 2])
    return tf.concat([mean, tf.sqrt(tf.maximum(var, 0.0))], axis=1)


def picture_blocks(images: Any) -> Any:
    """The picture itself as OOD features: the means of its ``PICTURE_BLOCK``-pixel square
    blocks, in 0..1, ``[N, H/4 * W/4 * C]`` (a NumPy array or a tensor in, a tensor out)."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32) / 255.0
    blocks = tf.nn.avg_pool2d(x, PICTURE_BLOCK, PICTURE_BLOCK, "VALID")
    return tf.reshape(blocks, [tf.shape(blocks)[0], -1])


def scored_values(body: keras.Model, images: Any, picture: bool) -> list[Any]:
    """What the OOD score reads of ``images``: their picture blocks (when ``picture``),
    ``body``'s (``feature_outputs``) conv maps and, last, the penultimate features."""
    import tensorflow as tf

    values = outputs_of(body, tf.cast(images, tf.float32))
    return [picture_blocks(images), *values] if picture else values


def feature_outputs(model: keras.Model) -> keras.Model:
    """``model`` -> the scored layers' outputs and the penultimate features, in order."""
    return keras.Model(model.inputs[0],
                       [*(layer.output for layer in scored_layers(model)),
                        model.layers[-1].input])


def outputs_of(body: keras.Model, x: Any) -> list[Any]:
    """``body``'s outputs for ``x`` as a list (Keras gives a lone output as itself)."""
    outs = body(x, training=False)
    return list(outs) if isinstance(outs, list | tuple) else [outs]


def layer_names(model: keras.Model, picture: bool = False) -> list[str]:
    return [*([PICTURE] if picture else []), *(layer.name for layer in scored_layers(model)),
            "penultimate"]


def layer_features(model: keras.Model, images: np.ndarray, picture: bool = False,
                   batch_size: int = 1000) -> list[np.ndarray]:
    """Per scored layer (``layer_names``), the OOD features ``[N, D_l]`` of ``images``."""
    body = feature_outputs(model)
    parts: list[list[np.ndarray]] = [[] for _ in layer_names(model, picture)]
    for i in range(0, len(images), batch_size):
        values = scored_values(body, images[i:i + batch_size], picture)
        for part, value in zip(parts, values, strict=True):
            part.append(np.asarray(summarise(value)))
    return [np.concatenate(p) for p in parts]


def head(model: keras.Model) -> tuple[np.ndarray, np.ndarray]:
    """The last Dense layer's kernel ``[D, K]`` and bias ``[K]``: features -> logits."""
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense):
        raise ValueError(f"the last layer must be Dense (softmax), not {type(last).__name__}")
    return np.asarray(last.kernel), np.asarray(last.bias)


def penultimate_features(model: keras.Model, images: np.ndarray,
                         batch_size: int = 1000) -> np.ndarray:
    """Penultimate features ``[N, D]`` of uint8 ``images``, in inference mode."""
    body = penultimate(model)
    return np.concatenate([
        np.asarray(body(images[i:i + batch_size].astype("float32"), training=False))
        for i in range(0, len(images), batch_size)])


def logits_of(model: keras.Model, feats: np.ndarray) -> np.ndarray:
    kernel, bias = head(model)
    return np.asarray(feats @ kernel + bias, dtype=np.float64)
