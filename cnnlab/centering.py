"""MNIST's normalisation of a picture (light ink on black): the ink's bounding box fitted
into 20x20 and its centre of mass moved to the middle of a 28x28 frame. The service does
it to digit uploads; training does it to copies of its data, so that the OOD score knows
uploads as they are prepared."""

from __future__ import annotations

import cv2
import numpy as np

INK_BOX = 20  # MNIST fits a digit's ink into 20x20 inside its 28x28 frame


def centres_uploads(dataset: str | None) -> bool:
    """Whether uploads for a model of ``dataset`` are centred like MNIST's by default:
    digits yes; clothing fills its frame (and an unknown dataset is not assumed), so no."""
    return dataset == "mnist"


def fit_longest_side(gray: np.ndarray, box: int) -> np.ndarray:
    """Resize so the longer side is ``box``, keeping the aspect ratio (any channels)."""
    h, w = gray.shape[:2]
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(gray, size, interpolation=interp)


def center_like_mnist(pictures: np.ndarray, size: int = 28) -> list[np.ndarray]:
    """MNIST's normalisation of each picture of ``[N, H, W]``: the ink's bounding box
    fitted into ``INK_BOX`` pixels, its centre of mass moved to the middle of a
    ``size x size`` frame. Ink is what is brighter than a tenth of the picture's brightest
    pixel; a picture without ink becomes black."""
    peak = np.maximum(pictures.max(axis=(1, 2)), 1)
    inks = (pictures > (0.1 * peak)[:, None, None]).view(np.uint8)  # [N, H, W] of 0/1
    out = []
    for gray, ink in zip(pictures, inks, strict=True):
        x, y, w, h = cv2.boundingRect(ink)
        if w == 0 or h == 0:
            out.append(np.zeros((size, size), np.uint8))
            continue
        digit = fit_longest_side(gray[y:y + h, x:x + w], INK_BOX)
        m = cv2.moments(digit)
        out.append(_place(digit, size, m["m00"], m["m10"], m["m01"]))
    return out


def _place(digit: np.ndarray, size: int, m00: float, m10: float, m01: float) -> np.ndarray:
    """The fitted ``digit`` in a ``size x size`` frame, its centre of mass (from its
    moments ``m00``, ``m10``, ``m01``) in the middle."""
    h, w = digit.shape
    top, left = (size - h) // 2, (size - w) // 2  # where the box sits in the frame
    dx = dy = 0.0
    if m00 > 0:
        dx = size / 2 - (left + m10 / m00)
        dy = size / 2 - (top + m01 / m00)
    # placing the box and shifting it are one translation: one warp
    shift = np.array([[1, 0, left + dx], [0, 1, top + dy]], np.float32)
    return cv2.warpAffine(digit, shift, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
