"""Declared tensors are checked against the model before anything is materialised."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from service.dataplane.requests import Tensor
from service.dataplane.tensors import model_input
from service.errors import InvalidInput, TooLarge
from service.runtime.settings import Settings
from service.serving.version import TensorInfo

IMAGE = TensorInfo("image", "uint8", [-1, 28, 28, 1])
SETTINGS = Settings(max_instances=8)


def test_raw_bytes_of_the_declared_size_become_the_input() -> None:
    pixels = np.arange(2 * 784, dtype=np.uint8)
    got = model_input(Tensor("image", "uint8", (2, 28, 28, 1), pixels.tobytes()), IMAGE,
                      SETTINGS)
    np.testing.assert_array_equal(got.ravel(), pixels)
    assert got.shape == (2, 28, 28, 1)


@pytest.mark.parametrize("values", [
    list(range(256)) * 3 + list(range(16)),          # ints 0..255: read as bytes
    [float(v) for v in range(256)] * 3 + [0.0] * 16,  # whole floats: the general path
])
def test_flat_json_values_become_the_input(values: list[float]) -> None:
    got = model_input(Tensor("image", "uint8", (1, 28, 28, 1), values), IMAGE, SETTINGS)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got.ravel(), values)


@pytest.mark.parametrize(("tensor", "error", "needle"), [
    (Tensor("image", "uint8", (1, 28, 28, 1), [0] * 783 + [256]), InvalidInput, "0..255"),
    (Tensor("image", "uint8", (1, 28, 28, 1), [-1] + [0] * 783), InvalidInput, "0..255"),
    (Tensor("image", "uint8", (0, 28, 28, 1), b""), InvalidInput, "empty"),
    (Tensor("image", "uint8", (9, 28, 28, 1), b""), TooLarge, "batch of 9 images"),
    (Tensor("image", "uint8", (1, 28, 28, 2), b""), InvalidInput, "does not match"),
    (Tensor("image", "uint8", (1, 28, 28, 1), b"\0"), InvalidInput, "784 expected"),
    (Tensor("image", "uint8", (1, 28, 28, 1), [7]), InvalidInput, "784 expected"),
    (Tensor("other", "uint8", (1, 28, 28, 1), b""), InvalidInput, "unknown input"),
    (Tensor("image", "bytes", (1, 28, 28, 1), b""), InvalidInput, "datatype"),
    (Tensor("image", "float32", None, [[[[0.5]] * 28] * 28]), InvalidInput, "integers 0..255"),
    (Tensor("image", "float64", None, [[1, [2]]]), InvalidInput, "numbers"),
])
def test_bad_declarations_are_refused(tensor: Tensor, error: type[Exception],
                                      needle: str) -> None:
    with pytest.raises(error, match=needle):
        model_input(tensor, IMAGE, SETTINGS)


def test_a_huge_declared_shape_allocates_nothing() -> None:
    """TF Serving's tensor of [1000000000,28,28,1] with one value: refused from the
    declaration, before any array exists."""
    tracemalloc.start()
    with pytest.raises(TooLarge):
        model_input(Tensor("image", "uint8", (10**9, 28, 28, 1), [0]), IMAGE, SETTINGS)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000
