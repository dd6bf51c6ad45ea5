"""The tutorials' architectures, by name, plus ``best`` (our strongest small CNN).

Every model takes float pixels in 0..255 shaped ``[N, 28, 28, 1]`` and starts with a
``Rescaling(1/255)`` layer, so the exported model owns its preprocessing and training and
serving cannot drift apart. Layers get stable, readable names: they become the keys of
the ``activations`` signature and the service's layer names.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

Builder = Callable[[tuple[int, int, int], int], keras.Model]

_REGISTRY: dict[str, Builder] = {}
DESCRIPTIONS: dict[str, str] = {}


def register(name: str, description: str) -> Callable[[Builder], Builder]:
    def wrap(fn: Builder) -> Builder:
        _REGISTRY[name] = fn
        DESCRIPTIONS[name] = description
        return fn

    return wrap


def names() -> list[str]:
    return list(_REGISTRY)


def build(name: str, input_shape: tuple[int, int, int] = (28, 28, 1),
          num_classes: int = 10, dropout: float | None = None) -> keras.Model:
    """Build architecture ``name``; raises ``KeyError`` naming the choices. ``dropout``
    sets every Dropout layer's rate (None: the architecture's own rates)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown architecture {name!r}; choose one of {', '.join(_REGISTRY)}")
    model = _REGISTRY[name](input_shape, num_classes)
    if dropout is not None:
        for layer in model.layers:
            if isinstance(layer, layers.Dropout):
                layer.rate = dropout
    return model


def _sequential(name: str, input_shape: tuple[int, int, int],
                body: list[layers.Layer]) -> keras.Model:
    return keras.Sequential(
        [keras.Input(shape=input_shape, name="image"),
         layers.Rescaling(1.0 / 255, name="rescale"), *body],
        name=name,
    )


@register("mlp20", "Dense 20 LeakyReLU x2, Dense 10 (tutorial 000 'hello world' MLP)")
def mlp20(input_shape: tuple[int, int, int], k: int) -> keras.Model:
    return _sequential("mlp20", input_shape, [
        layers.Flatten(name="flatten"),                              # [N, 784]
        layers.Dense(20, activation=layers.LeakyReLU(), name="dense1"),
        layers.Dense(20, activation=layers.LeakyReLU(), name="dense2"),
        layers.Dense(k, activation="softmax", name="probs"),
    ])


@register("dense128", "Flatten, Dense 128 relu, Dense 10 (tutorial 003 baseline)")
def dense128(input_shape: tuple[int, int, int], k: int) -> keras.Model:
    return _sequential("dense128", input_shape, [
        layers.Flatten(name="flatten"),
        layers.Dense(128, activation="relu", name="dense1"),
        layers.Dense(k, activation="softmax", name="probs"),
    ])


@register("cnn1", "Conv32 same, MaxPool, Dense 256, Dense 10 (tutorial 000 model1)")
def cnn1(input_shape: tuple[int, int, int], k: int) -> keras.Model:
    return _sequential("cnn1", input_shape, [
        layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1"),  # 28x28x32
        layers.MaxPooling2D(2, name="pool1"),                                   # 14x14x32
        layers.Flatten(name="flatten"),
        layers.Dense(256, activation="relu", name="dense1"),
        layers.Dense(k, activation="softmax", name="probs"),
    ])


@register("cnn2", "cnn1 plus Conv64 same + MaxPool (tutorial 000 model2)")
def cnn2(input_shape: tuple[int, int, int], k: int) -> keras.Model:
    return _sequential("cnn2", input_shape, [
        layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1"),  # 28x28x32
        layers.MaxPooling2D(2, name="pool1"),                                   # 14x14x32
        layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2"),  # 14x14x64
        layers.MaxPooling2D(2, name="pool2"),                                   # 7x7x64
        layers.Flatten(name="flatten"),
        layers.Dense(256, activation="relu", name="dense1"),
        layers.Dense(k, activation="softmax", name="probs"),
    ])


@register("conv1", "Conv64, MaxPool, Dense 128, Dense 10 (tutorial 001 99.8% exercise)")
def conv1(input_shape: tuple[int, int, int], k: int) -> keras.Model:
    return _sequential("conv1", input_shape, [
        layers.Conv2D(64, 3, activation="relu", name="conv1"),  # 26x26x64
        layers.MaxPooling2D(2, name="pool1"),                   # 13x13x64
        layers.Flatten(name="flatten"),
        layers.Dense(128, activation="relu", name="dense1"),
        layers.Dense(k, activation="softmax", name="probs"),
    ])


@register("fashion_cnn", "Conv64, MaxPool, Conv64, MaxPool, Dense 128 (tutorials 003/004)")
def fashion_cnn(input_shape: tuple[int, int, int], k: int) -> keras.Model:
    return _sequential("fashion_cnn", input_shape, [
        layers.Conv2D(64, 3, activation="relu", name="conv1"),  # 26x26x64
        layers.MaxPooling2D(2, name="pool1"),                   # 13x13x64
        layers.Conv2D(64, 3, activation="relu", name="conv2"),  # 11x11x64
        layers.MaxPooling2D(2, name="pool2"),                   # 5x5x64
        layers.Flatten(name="flatten"),                         # 1600
        layers.Dense(128, activation="relu", name="dense1"),
        layers.Dense(k, activation="softmax", name="probs"),
    ])


@register("keras_mnist_cnn", "Conv32, Conv64, MaxPool, Dropout, Dense 128 (tutorial 002)")
def keras_mnist_cnn(input_shape: tuple[int, int, int], k: int) -> keras.Model:
    return _sequential("keras_mnist_cnn", input_shape, [
        layers.Conv2D(32, 3, activation="relu", name="conv1"),  # 26x26x32
        layers.Conv2D(64, 3, activation="relu", name="conv2"),  # 24x24x64
        layers.MaxPooling2D(2, name="pool1"),                   # 12x12x64
        layers.Dropout(0.25, name="dropout1"),
        layers.Flatten(name="flatten"),                         # 9216
        layers.Dense(128, activation="relu", name="dense1"),
        layers.Dropout(0.5, name="dropout2"),
        layers.Dense(k, activation="softmax", name="probs"),
    ])


def _conv_bn(filters: int, name: str, kernel: int = 3, strides: int = 1,
             padding: str = "same") -> list[layers.Layer]:
    # Conv without bias (BatchNorm's beta replaces it), then BN, then ReLU.
    return [
        layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False,
                      name=name),
        layers.BatchNormalization(name=f"{name}_bn"),
        layers.ReLU(name=f"{name}_relu"),
    ]


@register("best", "Conv32-Pool-Conv64-Conv64-Pool with BatchNorm, Dense 128, dropout (ours)")
def best(input_shape: tuple[int, int, int], k: int) -> keras.Model:
    # Sized to train in under 30 minutes on a 2-core CPU at batch 256; the accuracy comes
    # from augmentation, BatchNorm, label smoothing and a cosine LR.
    return _sequential("best", input_shape, [
        *_conv_bn(32, "conv1"),                          # 28x28x32
        layers.MaxPooling2D(2, name="pool1"),            # 14x14x32
        *_conv_bn(64, "conv2"),                          # 14x14x64
        *_conv_bn(64, "conv3"),                          # 14x14x64
        layers.MaxPooling2D(2, name="pool2"),            # 7x7x64
        layers.Flatten(name="flatten"),                  # 3136
        layers.Dense(128, activation="relu", name="dense1"),
        layers.Dropout(0.4, name="dropout1"),
        layers.Dense(k, activation="softmax", name="probs"),
    ])


@register("strided", "Conv32, Conv32/5 stride 2, Conv64x2, Conv64/5 stride 2, Conv128/4, "
                     "all with BatchNorm, dropout (the strongest single Kaggle MNIST CNN)")
def strided(input_shape: tuple[int, int, int], k: int) -> keras.Model:
    # Stacked 3x3 convolutions, and learned 5x5 stride-2 downsampling in place of pooling;
    # about 2.5x the multiply-adds of ``best`` for its extra capacity.
    return _sequential("strided", input_shape, [
        *_conv_bn(32, "conv1"),                                    # 28x28x32
        *_conv_bn(32, "conv2", kernel=5, strides=2),               # 14x14x32
        layers.Dropout(0.4, name="dropout1"),
        *_conv_bn(64, "conv3"),                                    # 14x14x64
        *_conv_bn(64, "conv4"),                                    # 14x14x64
        *_conv_bn(64, "conv5", kernel=5, strides=2),               # 7x7x64
        layers.Dropout(0.4, name="dropout2"),
        *_conv_bn(128, "conv6", kernel=4, padding="valid"),        # 4x4x128
        layers.Flatten(name="flatten"),                            # 2048
        layers.Dropout(0.4, name="dropout3"),
        layers.Dense(k, activation="softmax", name="probs"),
    ])


# ------------------------------------------------------------------ structure
def conv_layers(model: keras.Model) -> list[layers.Layer]:
    """``model``'s conv layers, in order (what Grad-CAM, the filters and the OOD score
    read)."""
    return [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]


_BLOCK_TAIL = (layers.BatchNormalization, layers.ReLU, layers.Activation, layers.LeakyReLU)


def block_output(model: keras.Model, conv: layers.Layer) -> layers.Layer:
    """The layer whose output is ``conv``'s activated feature map: the conv itself, or the
    BatchNorm/ReLU right after it (Grad-CAM wants rectified maps, not pre-BN values).
    Followed through the model's graph, so a branching (functional) model's blocks are
    found too: a layer read by more than one, or by anything else, ends the block."""
    inside = {id(layer) for layer in model.layers}
    layer = conv
    while True:
        readers = [node.operation for node in getattr(layer, "_outbound_nodes", [])
                   if id(node.operation) in inside]
        if len(readers) != 1 or not isinstance(readers[0], _BLOCK_TAIL):
            return layer
        layer = readers[0]
