"""How an uploaded picture's grayscale pixels become what a small model sees: ink on paper
inverted to MNIST's light ink on black (paper that is not white taken away), then either
centred like MNIST's digits or fitted into the frame. The service prepares every upload
with ``as_model_sees``; training prepares the pictures it fits the OOD score on with it
too, so that the score knows uploads as the service makes them."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from cnnlab.centering import center_like_mnist, fit_longest_side

Invert = Literal["auto", "on", "off"]


def as_model_sees(pictures: np.ndarray, height: int, width: int, invert: Invert = "auto",
                  center: bool = False, stretch: bool = False
                  ) -> tuple[list[np.ndarray], np.ndarray]:
    """Grayscale pictures of one shape ``[N, h, w]`` -> ``height x width`` model inputs
    (``[H, W]`` each) and which of them were inverted ``[N]`` (bool). ``invert``: auto
    inverts pictures whose border is mostly light. ``center``: MNIST-style centering
    (square inputs only). ``stretch``: resized to the input whatever their aspect (as a
    folder's training pictures are), else fitted in and padded with black."""
    flips = (light_backgrounds(pictures) if invert == "auto"
             else np.full(len(pictures), invert == "on"))
    if flips.any():  # (a new array: the caller's pictures stay as they are)
        pictures = np.where(flips[:, None, None], 255 - pictures, pictures)
        pictures[flips] = on_black(pictures[flips])  # (paper need not be white)
    pixels = (center_like_mnist(pictures, height) if center and height == width
              else [resized(g, height, width) if stretch else pad_to(g, height, width)
                    for g in pictures])
    return pixels, flips


def in_colour(pictures: np.ndarray, height: int, width: int,
              invert: Invert = "off") -> tuple[list[np.ndarray], np.ndarray]:
    """Colour pictures of one shape ``[N, h, w, 3]`` -> ``height x width`` model inputs
    (``[H, W, 3]`` each, resized whatever their aspect, as a folder's training pictures
    are) and which were inverted (only with ``invert="on"``: light backgrounds are no
    reason to invert a colour picture)."""
    flip = invert == "on"
    pixels = [resized(255 - p if flip else p, height, width) for p in pictures]
    return pixels, np.full(len(pictures), flip)


def resized(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    """``picture`` (``[h, w]`` or ``[h, w, C]``) resized to ``height x width``: area
    averaging when it shrinks, bilinear when it grows."""
    if picture.shape[:2] == (height, width):
        return picture
    shrinks = height * width < picture.shape[0] * picture.shape[1]
    return cv2.resize(picture, (width, height),  # type: ignore[no-any-return]
                      interpolation=cv2.INTER_AREA if shrinks else cv2.INTER_LINEAR)


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
