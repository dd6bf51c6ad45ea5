"""How many images one model call holds on the CPU: a bigger batch runs as several calls,
one after the other.

A runtime keeps memory for the intermediate tensors of its largest call (ONNX Runtime's
arena, TensorFlow's allocator), in proportion to the call's pictures; past a call of a
few milliseconds' work it is no faster per image (``docs/performance.md``, Images a call).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

# Input values per call (what 64 MNIST digits hold): a call this big takes milliseconds for
# any CNN, so a runtime's per-call cost is spread thin
CALL_VALUES = 64 * 28 * 28

Outputs = dict[str, np.ndarray]  # a model call's outputs by name, one row per image


def images_per_call(image_shape: Sequence[object]) -> int:
    """How many images of ``image_shape`` (H, W, C) one call takes, at least one; an
    unknown size (not served: the service needs H, W and C) counts as 1."""
    values = math.prod(d if isinstance(d, int) and d > 0 else 1 for d in image_shape)
    return max(1, CALL_VALUES // values)


def in_calls(run: Callable[[np.ndarray], Outputs], images: np.ndarray,
             step: int | None) -> Outputs:
    """``run`` over ``images`` in calls of at most ``step`` images (None: one call), the
    outputs put back together in order."""
    if step is None or len(images) <= step:
        return run(images)
    return joined([run(images[i:i + step]) for i in range(0, len(images), step)])


def joined(parts: Sequence[Outputs]) -> Outputs:
    """The outputs of consecutive parts of a batch as the whole batch's, rows in order."""
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
