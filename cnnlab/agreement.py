"""When two runtimes' answers to the same pictures count as the same: the check a
``model.onnx`` passes at export (``training.onnx_export``) and again at load, before it
serves (``service.serving.onnx_runner``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

ATOL = 1e-5  # probabilities may differ this much between runtimes (float rounding)


def probability_gap(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]) -> float:
    """The largest difference between the two answers' probabilities."""
    return float(np.abs(got["probabilities"] - want["probabilities"]).max())


def disagreement(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]) -> str | None:
    """Why ``got`` is not the same answer as ``want`` (probabilities more than ``ATOL``
    apart, or another OOD verdict when ``want`` has verdicts), or None when it is."""
    gap = probability_gap(got, want)
    if gap > ATOL:
        return f"probabilities differ by {gap:.2g}"
    if "in_distribution" in want and not np.array_equal(got["in_distribution"],
                                                        want["in_distribution"]):
        return "OOD verdicts differ"
    return None
