"""Decode uploaded pictures safely.

Decoding is defended in layers: the format is recognised by magic bytes (not by the
file name or Content-Type); the header is parsed by Pillow *without* decoding pixels,
so a decompression bomb (tiny file, huge claimed size) is refused before any large
allocation; only then does OpenCV decode.
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image

from service.errors import InvalidInput, TooLarge, UnsupportedMedia

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
    """Format, width and height from the header alone; a ``ServiceError`` if unacceptable."""
    if not data:
        raise InvalidInput("empty image: the upload has no bytes")
    fmt = sniff_format(data)
    if fmt not in SUPPORTED_FORMATS:
        what = f"{fmt.upper()} images are" if fmt else "this file is"
        raise UnsupportedMedia(f"{what} not supported; send one of: "
                               f"{', '.join(f.upper() for f in SUPPORTED_FORMATS)}")
    if fmt == "png" and (size := _png_size(data)) is not None:
        width, height = size
    else:
        width, height = _pillow_size(data, fmt)
    if width < 1 or height < 1:
        raise InvalidInput(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise TooLarge(f"image is {width}x{height} = {width * height} pixels; "
                       f"the limit is {max_pixels}")
    return fmt, width, height


def scans(data: bytes, fmt: str) -> int:
    """How many passes over its pixels decoding ``data`` takes: a progressive JPEG's scans
    (each refines every pixel again), counted from its start-of-scan markers before any
    decoding, as libjpeg-turbo's scan limit counts them; 1 for every other picture. (In a
    JPEG's coded data a 0xFF byte is always followed by 0x00, so 0xFFDA is only ever a
    marker; one inside an embedded thumbnail counts too, which only errs on the safe
    side.)"""
    return max(1, data.count(b"\xff\xda")) if fmt == "jpeg" else 1


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
        raise InvalidInput(f"corrupt or truncated {fmt.upper()} image: "
                           "its header cannot be read") from None


def decode(data: bytes, max_pixels: int, *, color: bool = False) -> np.ndarray:
    """Decode to uint8: ``[H,W]`` grayscale, or ``[H,W,3]`` BGR when ``color``.

    Transparent pixels are composited over white (how a viewer shows them), 16-bit
    images are scaled to 8 bits, palette/CMYK images are converted by the decoder. Every
    step works in 8 bits, so a picture costs at most the decoder's array (up to 8 bytes a
    pixel, 16-bit with alpha) and a few bytes a pixel beside it.
    """
    fmt, _, _ = check_header(data, max_pixels)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise InvalidInput(f"corrupt or truncated {fmt.upper()} image: it cannot be decoded")
    if img.dtype == np.uint16:
        img = cv2.convertScaleAbs(img, alpha=1 / 257)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if color else img
    alpha = img[:, :, 3] if img.shape[2] == 4 else None
    if color:
        out = img if alpha is None else cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        if alpha is not None:
            alpha = cv2.merge([alpha, alpha, alpha])
    else:
        out = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if alpha is not None else cv2.COLOR_BGR2GRAY)
    del img
    if alpha is None:
        return out
    # over white: 255 - (255 - value) * alpha / 255, in 8 bits
    return 255 - cv2.multiply(255 - out, alpha, scale=1 / 255)  # type: ignore[no-any-return]
