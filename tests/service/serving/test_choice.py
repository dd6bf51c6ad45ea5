"""``auto``'s choice of runtime on the CPU: both timed on the version's pictures, taking
turns, and TensorFlow only when it is clearly faster for a lone picture and a full call."""

from __future__ import annotations

import time

import numpy as np
import pytest

from service.serving import choice
from service.serving.choice import Timing, tensorflow_is_faster, timed

PICTURES = np.arange(3 * 4 * 4).reshape(3, 4, 4, 1).astype(np.uint8)


def test_the_runtimes_take_turns_size_by_size() -> None:
    calls: list[tuple[str, int]] = []

    def recorder(name: str) -> choice.Run:
        def run(images: np.ndarray) -> dict[str, np.ndarray]:
            calls.append((name, len(images)))
            return {"x": images}
        return run

    got = timed({"a": recorder("a"), "b": recorder("b")}, PICTURES, 5, rounds=2)
    assert calls == [("a", 1), ("b", 1)] * 2 + [("a", 5), ("b", 5)] * 2
    assert set(got) == {"a", "b"} and got["a"].call_images == 5


def test_when_a_call_holds_one_picture_only_that_size_is_timed() -> None:
    sizes: list[int] = []

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        sizes.append(len(images))
        return {"x": images}

    got = timed({"only": run}, PICTURES, 1, rounds=3)
    assert sizes == [1] * 3
    assert got["only"].one_ms == got["only"].call_ms


def test_the_quicker_runtime_shows_the_smaller_times() -> None:
    def sleeper(seconds: float) -> choice.Run:
        def run(images: np.ndarray) -> dict[str, np.ndarray]:
            time.sleep(seconds * len(images))
            return {"x": images}
        return run

    got = timed({"onnxruntime": sleeper(0.01), "tensorflow": sleeper(0.001)}, PICTURES, 2)
    assert got["tensorflow"].one_ms < got["onnxruntime"].one_ms
    assert got["tensorflow"].call_ms < got["onnxruntime"].call_ms
    assert tensorflow_is_faster(got["onnxruntime"], got["tensorflow"])
    assert not tensorflow_is_faster(got["tensorflow"], got["onnxruntime"])


@pytest.mark.parametrize(("onnx", "tensorflow", "faster"), [
    ((1.0, 64.0), (0.5, 32.0), True),     # faster at both ends
    ((1.0, 64.0), (0.9, 57.6), True),     # by exactly the margin
    ((1.0, 64.0), (2.0, 32.0), False),    # a lone picture slower
    ((1.0, 64.0), (0.5, 64.0), False),    # a full call no faster
    ((1.0, 64.0), (0.95, 60.0), False),   # faster, but within the margin
])
def test_tensorflow_serves_only_when_clearly_faster_at_both_ends(
        onnx: tuple[float, float], tensorflow: tuple[float, float], faster: bool) -> None:
    assert tensorflow_is_faster(Timing(*onnx, 64), Timing(*tensorflow, 64)) is faster


def test_a_timing_describes_itself() -> None:
    assert Timing(0.612, 35.24, 64).describe() == "a picture 0.61 ms, 64 pictures 35.2 ms"
    assert Timing(4.4, 4.4, 1).describe() == "a picture 4.40 ms"
