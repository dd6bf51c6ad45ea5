"""Turn uploaded pictures into what a small image model expects.

``preprocess`` is the one path for one picture or many: decode each, then prepare them
together. Pictures of one shape are judged in numpy at once (light background, ink);
what is left per picture is a few OpenCV calls (ink bounding box, resize, moments, one
warp). The maths is MNIST's own normalisation: light ink on black, the ink's bounding
box fitted into 20x20 and its centre of mass moved to the middle of a 28x28 frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import cv2
import numpy as np

from cnnlab.centering import center_like_mnist, fit_longest_side
from service.images.decode import decode
from service.runtime import deadline, tracing

Invert = Literal["auto", "on", "off"]
# a decoded picture is kept at most this long on its longer side: the model sees 28x28
KEEP_SIDE = 256


@dataclass(frozen=True)
class PreprocessSpec:
    """How pictures become one model's input."""

    height: int
    width: int
    invert: Invert = "auto"     # auto: invert pictures whose border is mostly light
    center: bool = False        # MNIST-style centering (square inputs only)
    max_pixels: int = 25_000_000  # decoding refuses larger pictures (from their header)


class Prepared(NamedTuple):
    """One picture as the model sees it, and what was done to it."""

    pixels: np.ndarray              # uint8 [H, W, 1], what the model sees
    inverted: bool
    centered: bool
    original_size: tuple[int, int]  # width, height


def preprocess(blobs: Sequence[bytes], spec: PreprocessSpec) -> list[Prepared]:
    """Encoded pictures -> model inputs (``ServiceError`` for a picture that cannot be
    read). They are decoded one at a time, and a large one is shrunk right after its
    decode, so what a request keeps is small whatever its pictures' size."""
    grays, sizes = [], []
    with tracing.stage("decode"):
        for blob in blobs:
            deadline.check()  # a request past its deadline stops here, not at the end
            gray = decode(blob, spec.max_pixels)
            sizes.append((gray.shape[1], gray.shape[0]))
            grays.append(gray if max(gray.shape) <= KEEP_SIDE
                         else fit_longest_side(gray, KEEP_SIDE))
    with tracing.stage("preprocess"):
        return prepare(grays, spec, sizes)


def stack(prepared: list[Prepared]) -> np.ndarray:
    """The model input ``[N, H, W, 1]`` of prepared pictures."""
    return np.stack([p.pixels for p in prepared])


def prepare(grays: list[np.ndarray], spec: PreprocessSpec,
            sizes: list[tuple[int, int]] | None = None) -> list[Prepared]:
    """Grayscale ``[h, w]`` pictures -> ``[H, W, 1]`` model inputs: invert, center, resize.
    ``sizes``: each picture's (width, height) as uploaded, when it was shrunk since."""
    out: list[Prepared | None] = [None] * len(grays)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, gray in enumerate(grays):
        groups.setdefault(gray.shape, []).append(i)
    centered = spec.center and spec.height == spec.width
    for (h, w), members in groups.items():
        pictures = (grays[members[0]][None] if len(members) == 1  # [N, h, w]
                    else np.stack([grays[i] for i in members]))
        flips = (light_backgrounds(pictures) if spec.invert == "auto"
                 else np.full(len(members), spec.invert == "on"))
        if flips.any():  # (a new array: the caller's pictures stay as they are)
            pictures = np.where(flips[:, None, None], 255 - pictures, pictures)
            pictures[flips] = on_black(pictures[flips])  # (paper need not be white)
        pixels = (center_like_mnist(pictures, spec.height) if centered
                  else [pad_to(g, spec.height, spec.width) for g in pictures])
        for i, px, flip in zip(members, pixels, flips.tolist(), strict=True):
            out[i] = Prepared(pixels=px[:, :, None], inverted=flip, centered=spec.center,
                              original_size=sizes[i] if sizes else (w, h))
    return out  # type: ignore[return-value]  # every index was filled above


def on_black(pictures: np.ndarray) -> np.ndarray:
    """Inverted pictures of ink on paper ``[N, H, W]`` on a black background, as MNIST's
    are: where a picture's background (the median of its border) is grey — paper that was
    not white, photographed in poor light or with a scanner's offset — that level is
    taken away and the rest stretched back to 0..255, so the paper does not read as ink.
    Pictures already on black are returned as they are."""
    background = np.median(_border(pictures), axis=1)  # [N]
    grey = np.flatnonzero(background > 0)
    if not len(grey):
        return pictures
    out = pictures.copy()
    for i in grey:
        lifted = pictures[i].astype(np.float32) - float(background[i])
        out[i] = np.clip(lifted * (255.0 / max(float(lifted.max()), 1.0)), 0, 255)
    return out


def _border(pictures: np.ndarray) -> np.ndarray:
    """Each picture's border pixels, ``[N, 2W + 2H]`` (the corners twice)."""
    return np.concatenate([pictures[:, 0], pictures[:, -1], pictures[:, :, 0],
                           pictures[:, :, -1]], axis=1)


def light_backgrounds(pictures: np.ndarray) -> np.ndarray:
    """Per picture of ``[N, H, W]``: is most of its border light? MNIST wants light ink on
    black, so such a picture (dark ink on paper) is inverted. (Corners count twice: each
    lies on two sides.)"""
    _, h, w = pictures.shape
    return np.count_nonzero(_border(pictures) > 127, axis=1) > h + w


def pad_to(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    """Aspect-preserving resize into ``height x width``, padded with black."""
    if gray.shape == (height, width):
        return gray
    fitted = fit_longest_side(gray, min(height, width)) if height == width else cv2.resize(
        gray, (width, height), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width), np.uint8)
    h, w = fitted.shape
    top, left = (height - h) // 2, (width - w) // 2
    canvas[top:top + h, left:left + w] = fitted
    return canvas
