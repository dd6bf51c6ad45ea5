"""Which runtime runs a version's predictions on the CPU under ``runtime=auto``: both are
timed at load, on the version's own pictures, and ONNX Runtime serves unless TensorFlow's
Session is clearly faster both for a lone picture and for a full call.

The two run a CNN with different kernels (ONNX Runtime's MLAS, TensorFlow's oneDNN) and
per-call costs, so which is faster depends on the model, the CPU and the threads a worker
has; ``python bench/runtimes.py`` times both as this module does (``docs/performance.md``).
A lone picture's time is what a client that waits for each answer sees, a full call's
what a loaded service sees; the Session must win both, by ``MARGIN``, so that timing
noise never trades one for the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.serving.calls import Outputs

Run = Callable[[np.ndarray], Outputs]

ROUNDS = 3      # each runtime's best of this many calls of each size, taking turns
MARGIN = 0.9    # TensorFlow serves when its times are at most this fraction of ONNX Runtime's


@dataclass(frozen=True)
class Timing:
    """A runtime's best times: one picture, and one full call of ``call_images``."""

    one_ms: float
    call_ms: float
    call_images: int

    def describe(self) -> str:
        if self.call_images == 1:
            return f"a picture {self.one_ms:.2f} ms"
        return (f"a picture {self.one_ms:.2f} ms, {self.call_images} pictures "
                f"{self.call_ms:.1f} ms")


def batch_of(pictures: np.ndarray, n: int) -> np.ndarray:
    """``n`` pictures cycled from ``pictures`` (``[k, H, W, C]``)."""
    return np.resize(pictures, (n, *pictures.shape[1:]))


def timed(runs: dict[str, Run], pictures: np.ndarray, call_images: int,
          rounds: int = ROUNDS) -> dict[str, Timing]:
    """Each of ``runs``' best time for one picture and for ``call_images`` pictures (one
    call): the lone pictures first, then the full calls, the runtimes taking turns so
    that a change in the machine's speed (another worker loading beside this one) falls
    on both. The best of ``rounds`` leaves out each size's first, slower call."""
    one, full = batch_of(pictures, 1), batch_of(pictures, call_images)
    sizes = [one] if call_images == 1 else [one, full]
    best: dict[str, list[float]] = {name: [float("inf")] * len(sizes) for name in runs}
    for i, x in enumerate(sizes):  # one size at a time: a big call leaves the caches cold
        for _ in range(rounds):
            for name, run in runs.items():
                started = time.perf_counter()
                run(x)
                best[name][i] = min(best[name][i], time.perf_counter() - started)
    return {name: Timing(1000 * times[0], 1000 * times[-1], call_images)
            for name, times in best.items()}


def tensorflow_is_faster(onnx: Timing, tensorflow: Timing) -> bool:
    """Whether the Session beats ONNX Runtime by ``MARGIN`` for a lone picture and for a
    full call alike."""
    return (tensorflow.one_ms <= MARGIN * onnx.one_ms
            and tensorflow.call_ms <= MARGIN * onnx.call_ms)
