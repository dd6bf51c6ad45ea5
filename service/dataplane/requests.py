"""What a face hands the dataplane: typed requests, not yet checked or materialised."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnlab.uploads import Invert

PREDICT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class ModelRef:
    """Which version: a number, a label, or (neither) the newest available."""

    name: str
    version: int | str | None = None
    label: str | None = None


@dataclass(frozen=True)
class Tensor:
    """A tensor as the client declared it. ``data`` is raw little-endian bytes in C order,
    or the numbers as sent (flat, or nested when ``shape`` is None: JSON rows, whose
    nesting is the shape). Nothing is materialised until the declaration is checked."""

    name: str
    dtype: str                          # numpy's name: uint8, float32, ...
    shape: tuple[int, ...] | None
    data: bytes | Sequence[Any]


@dataclass(frozen=True)
class Pictures:
    """Encoded pictures (PNG, JPEG, ...) to classify as uploads are; ``name``: the model
    input a face sent them as (None for uploads, which name none)."""

    blobs: Sequence[bytes]
    invert: Invert = "auto"
    center: bool | None = None           # None: on for digit models
    name: str | None = None


Input = Tensor | Pictures


@dataclass(frozen=True)
class InferRequest:
    """One batch through one signature. ``inputs`` are consecutive parts of the batch (a
    TF Serving client may mix pixel rows and pictures); ``outputs`` picks the outputs to
    return (all when empty); ``class_counts`` turns an output into its best classes
    (Triton's classification extension: output name -> how many); ``json_answer``: the face
    writes the outputs as JSON numbers, so they must fit that budget."""

    model: ModelRef
    inputs: Sequence[Input]
    signature: str = PREDICT_SIGNATURE
    outputs: Sequence[str] = field(default_factory=tuple)
    class_counts: Mapping[str, int] = field(default_factory=dict)
    json_answer: bool = False
