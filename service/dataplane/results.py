"""What the DataPlane hands back to a face, typed: a batch's outputs (``InferResult``),
uploaded pictures classified (``Classified``), an example batch's class probabilities
(``Scores``), an explanation of the predicted classes (``Explanation``) and a version's
counts (``VersionStats``). Every prediction has an id of its own (``new_prediction_id``)
that feedback and capture refer to."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cnnlab.captures import Capture
from service.capture.writer import Served
from service.images.preprocess import Prepared


def new_prediction_id() -> str:
    """A prediction's own id: 128 random bits (unique and unguessable: whoever holds it may
    give feedback on the prediction), whatever the client's request id or trace."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class InferResult:
    model: str
    version: int
    outputs: dict[str, np.ndarray]
    prediction_id: str = field(default_factory=new_prediction_id)


@dataclass(frozen=True)
class Classified:
    """Uploaded pictures as the model saw them, its probabilities ``[N, K]`` and, when the
    version scores them, how unlike its training data each picture is."""

    model: str
    version: int
    class_names: list[str]
    prepared: list[Prepared]
    probabilities: np.ndarray
    ood_score: np.ndarray | None = None        # [N] float32, larger = more unusual
    in_distribution: np.ndarray | None = None  # [N] bool, the score within the threshold
    prediction_id: str = field(default_factory=new_prediction_id)


@dataclass(frozen=True)
class Scores:
    """A batch's class probabilities ``[N, K]`` and the version's class names."""

    model: str
    version: int
    class_names: list[str]
    probabilities: np.ndarray
    prediction_id: str = field(default_factory=new_prediction_id)


GRAD_CAM = "grad-cam"
INTEGRATED_GRADIENTS = "integrated-gradients"
EXPLAIN_METHODS = (GRAD_CAM, INTEGRATED_GRADIENTS)
IG_STEPS = 32  # pictures on integrated gradients' path, per image


@dataclass(frozen=True)
class Explanation:
    """Why a batch got its predicted classes: Grad-CAM of the last conv layer and the
    input-gradient saliency, per image; with integrated gradients, each pixel's share of
    the class's log-probability too."""

    model: str
    version: int
    class_names: list[str]
    layer: str
    images: np.ndarray           # [N, H, W, C] as the model saw them
    class_index: np.ndarray      # [N]
    probability: np.ndarray      # [N], of that class
    heatmap: np.ndarray          # [N, h, w]
    saliency: np.ndarray         # [N, H, W]
    attributions: np.ndarray | None = None  # [N, H, W], integrated gradients


@dataclass(frozen=True)
class VersionStats:
    """One version's counts and durations (every worker's, from the metrics)."""

    name: str
    version: int
    inferences: int        # images
    executions: int        # signature calls (batches)
    queue_count: int
    queue_ns: int
    compute_count: int
    compute_ns: int
    last_inference_ms: int  # Unix time of the last batch, in milliseconds (0: none yet)


def served(result: Classified, blobs: Sequence[bytes]) -> list[Served]:
    """A classified request's pictures as capture keeps them, under its prediction id."""
    best = result.probabilities.argmax(axis=1)
    now = time.time()
    return [Served(Capture(
        result.prediction_id, i, now, result.model, result.version, int(best[i]),
        float(result.probabilities[i, best[i]]),
        None if result.ood_score is None else float(result.ood_score[i]),
        None if result.in_distribution is None else bool(result.in_distribution[i]),
        blob, b""), prep.pixels)
        for i, (blob, prep) in enumerate(zip(blobs, result.prepared, strict=True))]
