"""Decode uploads safely and turn any picture into what a 28x28 model expects.

Decoding is defended in layers: the format is recognised by magic bytes (not by the
file name or Content-Type); the header is parsed by Pillow *without* decoding pixels,
so a decompression bomb (tiny file, huge claimed size) is refused before any large
allocation; only then does OpenCV decode.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from service.errors import ApiError

# name -> magic-byte test. GIF and SVG are recognised only to be refused clearly.
_MAGIC: list[tuple[str, bytes, int]] = [
    ("png", b"\x89PNG\r\n\x1a\n", 0),
    ("jpeg", b"\xff\xd8\xff", 0),
    ("bmp", b"BM", 0),
    ("tiff", b"II*\x00", 0),
    ("tiff", b"MM\x00*", 0),
    ("gif", b"GIF8", 0),
]
SUPPORTED_FORMATS = ("png", "jpeg", "bmp", "webp", "tiff")

Invert = Literal["auto", "on", "off"]


def sniff_format(data: bytes) -> str | None:
    for name, magic, offset in _MAGIC:
        if data[offset:offset + len(magic)] == magic:
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    head = data[:256].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")):
        return "svg"
    return None


def check_header(data: bytes, max_pixels: int) -> tuple[str, int, int]:
    """Format, width and height from the header alone; ApiError if unacceptable."""
    if not data:
        raise ApiError(400, "empty image: the upload has no bytes")
    fmt = sniff_format(data)
    if fmt not in SUPPORTED_FORMATS:
        what = f"{fmt.upper()} images are" if fmt else "this file is"
        raise ApiError(415, f"{what} not supported; send one of: "
                            f"{', '.join(f.upper() for f in SUPPORTED_FORMATS)}")
    if fmt == "png" and (size := _png_size(data)) is not None:
        width, height = size
    else:
        width, height = _pillow_size(data, fmt)
    if width < 1 or height < 1:
        raise ApiError(400, f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ApiError(413, f"image is {width}x{height} = {width * height} pixels; "
                            f"the limit is {max_pixels}")
    return fmt, width, height


def _png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk (it must come first), else None."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _pillow_size(data: bytes, fmt: str) -> tuple[int, int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on large sizes; we decide below
            Image.MAX_IMAGE_PIXELS = None    # our own limit applies, on the header
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Exception:
        raise ApiError(400, f"corrupt or truncated {fmt.upper()} image: "
                            "its header cannot be read") from None


def decode(data: bytes, max_pixels: int, *, color: bool = False) -> np.ndarray:
    """Decode to uint8: ``[H,W]`` grayscale, or ``[H,W,3]`` BGR when ``color``.

    Transparent pixels are composited over white (how a viewer shows them), 16-bit
    images are scaled to 8 bits, palette/CMYK images are converted by the decoder.
    """
    fmt, _, _ = check_header(data, max_pixels)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ApiError(400, f"corrupt or truncated {fmt.upper()} image: it cannot be decoded")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        img = (img[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if color:
        return img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


@dataclass(frozen=True)
class Prepared:
    pixels: np.ndarray        # uint8 [H, W, 1], what the model sees
    inverted: bool
    centered: bool
    original_size: tuple[int, int]  # width, height


def _light_background(gray: np.ndarray) -> bool:
    """Judge the background by the image border: MNIST wants light ink on black."""
    border = np.concatenate((gray[0], gray[-1], gray[:, 0], gray[:, -1]))
    light = np.count_nonzero(border > 127)
    return bool(light > gray.shape[0] + gray.shape[1])  # most of the border is light


def fit_longest_side(gray: np.ndarray, box: int) -> np.ndarray:
    """Resize so the longer side is ``box``, keeping the aspect ratio."""
    h, w = gray.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(gray, size, interpolation=interp)


def center_like_mnist(gray: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """MNIST's own normalisation: ink bounding box to 20x20, centre of mass to the middle."""
    _, ink = cv2.threshold(gray, 0.1 * max(int(gray.max()), 1), 255, cv2.THRESH_BINARY)
    x, y, w, h = cv2.boundingRect(ink)  # of the non-zero (ink) pixels
    if w == 0 or h == 0:
        return np.zeros((size, size), np.uint8)
    digit = fit_longest_side(gray[y:y + h, x:x + w], box)
    m = cv2.moments(digit, binaryImage=False)
    return _place_digit(digit, size, m["m00"], m["m10"], m["m01"])


def _place_digit(digit: np.ndarray, size: int, m00: float, m10: float,
                 m01: float) -> np.ndarray:
    """The fitted ``digit`` in a ``size``x``size`` frame, its centre of mass (from its
    moments ``m00``, ``m10``, ``m01``) in the middle."""
    h, w = digit.shape
    top, left = (size - h) // 2, (size - w) // 2  # where the box sits in the frame
    dx = dy = 0.0
    if m00 > 0:  # then move the centre of mass to the middle
        dx = size / 2 - (left + m10 / m00)
        dy = size / 2 - (top + m01 / m00)
    # placing the box and shifting it are one translation: one warp, no canvas
    shift = np.array([[1, 0, left + dx], [0, 1, top + dy]], np.float32)
    return cv2.warpAffine(digit, shift, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)


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


def prepare(gray: np.ndarray, height: int, width: int, *, invert: Invert = "auto",
            center: bool = False) -> Prepared:
    """Grayscale ``[H,W]`` -> model input ``[height,width,1]``: invert, center, resize."""
    do_invert = invert == "on" or (invert == "auto" and _light_background(gray))
    if do_invert:
        gray = 255 - gray
    out = center_like_mnist(gray, size=height) if center and height == width else pad_to(
        gray, height, width)
    return Prepared(pixels=out[:, :, None], inverted=do_invert, centered=center,
                    original_size=(gray.shape[1], gray.shape[0]))


# Below this many pictures of one shape, numpy's fixed cost a call outweighs what working
# on them together saves (28x28 digits, bench/preprocess.py, µs a picture together against
# one by one: 2 pictures 111 against 37, 6 about even, 8 31 against 38, 64 22 against 38).
_TOGETHER_FROM = 8


def prepare_batch(grays: list[np.ndarray], height: int, width: int, *,
                  invert: Invert = "auto", center: bool = False) -> list[Prepared]:
    """``prepare`` for many pictures at once, with the very same pixels.

    Pictures of one shape are judged and measured together in numpy (background, ink
    bounding box, centre of mass: exact integer sums, as ``cv2.moments`` takes them), so
    what is left per picture is its resize and its one warp: for 64 digits of 28x28 about
    60 % of the cost of ``prepare`` on each (bench/preprocess.py). Groups of fewer than
    ``_TOGETHER_FROM`` pictures go through ``prepare`` one by one."""
    out: list[Prepared | None] = [None] * len(grays)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, gray in enumerate(grays):
        groups.setdefault(gray.shape, []).append(i)
    centered = center and height == width
    for (h, w), members in groups.items():
        if len(members) < _TOGETHER_FROM:
            for i in members:
                out[i] = prepare(grays[i], height, width, invert=invert, center=center)
            continue
        stack = np.stack([grays[i] for i in members])  # [N, h, w]
        flips = _light_backgrounds(stack) if invert == "auto" else np.full(
            len(members), invert == "on")
        if flips.any():
            stack[flips] = 255 - stack[flips]
        pixels = _center_stack(stack, height) if centered else [
            pad_to(g, height, width) for g in stack]
        for i, px, flip in zip(members, pixels, flips.tolist(), strict=True):
            out[i] = Prepared(pixels=px[:, :, None], inverted=flip, centered=center,
                              original_size=(w, h))
    return out  # type: ignore[return-value]  # every index was filled above


def _light_backgrounds(stack: np.ndarray) -> np.ndarray:
    """``_light_background`` of each picture of ``stack`` ``[N,H,W]``."""
    border = np.concatenate((stack[:, 0], stack[:, -1], stack[:, :, 0], stack[:, :, -1]),
                            axis=1)
    return np.count_nonzero(border > 127, axis=1) > stack.shape[1] + stack.shape[2]


def _ink_boxes(stack: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per picture: is there ink, and its box ``y0, y1, x0, x1`` (ends exclusive), with
    ``center_like_mnist``'s threshold (a tenth of the picture's brightest pixel)."""
    peak = np.maximum(stack.max(axis=(1, 2)).astype(np.int64), 1)
    # cv2.threshold compares uint8 pixels with floor(thresh): the same as with thresh
    ink = stack > (0.1 * peak)[:, None, None]
    rows, cols = ink.any(axis=2), ink.any(axis=1)   # [N, H], [N, W]
    n_rows, n_cols = rows.shape[1], cols.shape[1]
    return (rows.any(axis=1), rows.argmax(axis=1), n_rows - rows[:, ::-1].argmax(axis=1),
            cols.argmax(axis=1), n_cols - cols[:, ::-1].argmax(axis=1))


def _center_stack(stack: np.ndarray, size: int, box: int = 20) -> list[np.ndarray]:
    """``center_like_mnist`` of each picture of ``stack`` ``[N,H,W]``, the same pixels."""
    has, y0, y1, x0, x1 = (a.tolist() for a in _ink_boxes(stack))
    digits = [fit_longest_side(g[t:b, lft:r], box) if ok else None
              for g, ok, t, b, lft, r in zip(stack, has, y0, y1, x0, x1, strict=True)]
    canvas = np.zeros((len(digits), box, box), np.int64)  # every digit fits the box
    for c, digit in zip(canvas, digits, strict=True):
        if digit is not None:
            c[:digit.shape[0], :digit.shape[1]] = digit
    ramp = np.arange(box)
    m00 = canvas.sum(axis=(1, 2)).tolist()
    m10 = (canvas.sum(axis=1) @ ramp).tolist()  # sum of x * pixel
    m01 = (canvas.sum(axis=2) @ ramp).tolist()  # sum of y * pixel
    return [np.zeros((size, size), np.uint8) if digit is None else
            _place_digit(digit, size, s00, s10, s01)
            for digit, s00, s10, s01 in zip(digits, m00, m10, m01, strict=True)]


def encode_png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ApiError(500, "PNG encoding failed")
    return buf.tobytes()
