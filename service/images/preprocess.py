"""Turn uploaded pictures into what a small image model expects.

``preprocess`` is the one path for one picture or many: decode each, then prepare them
together. Pictures of one shape are judged in numpy at once (light background, ink);
what is left per picture is a few OpenCV calls (ink bounding box, resize, moments, one
warp): ``cnnlab.uploads``, which training's OOD fitting prepares its pictures with too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from cnnlab.centering import fit_longest_side
from cnnlab.uploads import Invert, as_model_sees, in_colour
from service.images.decode import decode
from service.runtime import deadline, tracing

# a decoded picture is kept at most this long on its longer side: the model sees 28x28
KEEP_SIDE = 256


@dataclass(frozen=True)
class PreprocessSpec:
    """How pictures become one model's input."""

    height: int
    width: int
    invert: Invert = "auto"     # auto: invert pictures whose border is mostly light
    center: bool = False        # MNIST-style centering (square, 1-channel inputs only)
    max_pixels: int = 25_000_000  # decoding refuses larger pictures (from their header)
    channels: int = 1           # 3: colour (RGB) pictures for a colour model
    stretch: bool = False       # resized whatever their aspect (else fitted in, padded)


class Prepared(NamedTuple):
    """One picture as the model sees it, and what was done to it."""

    pixels: np.ndarray              # uint8 [H, W, C], what the model sees (RGB for C=3)
    inverted: bool
    centered: bool
    original_size: tuple[int, int]  # width, height


def preprocess(blobs: Sequence[bytes], spec: PreprocessSpec) -> list[Prepared]:
    """Encoded pictures -> model inputs (``ServiceError`` for a picture that cannot be
    read). They are decoded one at a time, and a large one is shrunk right after its
    decode, so what a request keeps is small whatever its pictures' size."""
    grays, sizes = [], []
    colour = spec.channels == 3
    with tracing.stage("decode"):
        for blob in blobs:
            deadline.check()  # a request past its deadline stops here, not at the end
            gray = decode(blob, spec.max_pixels, color=colour)
            if colour:  # OpenCV decodes to BGR; models take RGB (as TensorFlow decodes)
                gray = cv2.cvtColor(gray, cv2.COLOR_BGR2RGB)
            sizes.append((gray.shape[1], gray.shape[0]))
            grays.append(gray if max(gray.shape[:2]) <= KEEP_SIDE
                         else fit_longest_side(gray, KEEP_SIDE))
    with tracing.stage("preprocess"):
        return prepare(grays, spec, sizes)


def stack(prepared: list[Prepared]) -> np.ndarray:
    """The model input ``[N, H, W, C]`` of prepared pictures."""
    return np.stack([p.pixels for p in prepared])


def prepare(grays: list[np.ndarray], spec: PreprocessSpec,
            sizes: list[tuple[int, int]] | None = None) -> list[Prepared]:
    """Grayscale ``[h, w]`` (or, for a colour model, RGB ``[h, w, 3]``) pictures ->
    ``[H, W, C]`` model inputs: invert, center, resize. ``sizes``: each picture's
    (width, height) as uploaded, when it was shrunk since."""
    out: list[Prepared | None] = [None] * len(grays)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, gray in enumerate(grays):
        groups.setdefault(gray.shape, []).append(i)
    centered = spec.center and spec.height == spec.width and spec.channels == 1
    for (h, w, *_), members in groups.items():
        pictures = (grays[members[0]][None] if len(members) == 1  # [N, h, w(, 3)]
                    else np.stack([grays[i] for i in members]))
        if spec.channels == 3:
            pixels, flips = in_colour(pictures, spec.height, spec.width, spec.invert)
        else:
            pixels, flips = as_model_sees(pictures, spec.height, spec.width, spec.invert,
                                          centered, spec.stretch)
        for i, px, flip in zip(members, pixels, flips.tolist(), strict=True):
            out[i] = Prepared(pixels=px.reshape(spec.height, spec.width, spec.channels),
                              inverted=flip, centered=centered,
                              original_size=sizes[i] if sizes else (w, h))
    return out  # type: ignore[return-value]  # every index was filled above
