"""Turn tensors into pictures and bytes: tile grids, colormaps, PNG/JPEG/WebP, .npy."""

from __future__ import annotations

import io
from typing import Literal

import cv2
import numpy as np
import orjson
from fastapi.responses import Response

from service.errors import Unprocessable

Colormap = Literal["gray", "viridis", "inferno", "diverging"]
Norm = Literal["channel", "layer"]
ImageFormat = Literal["png", "jpeg", "webp"]

_CV_MAPS = {"viridis": cv2.COLORMAP_VIRIDIS, "inferno": cv2.COLORMAP_INFERNO}
MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp",
         "json": "application/json", "npy": "application/x-npy", "npz": "application/x-npz"}


def json_bytes(body: object) -> bytes:
    """A JSON answer whose values may be numpy arrays (serialised without ``tolist``)."""
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY, default=_plain)


def _plain(value: object) -> object:
    """What orjson does not serialise itself (a numpy array that is not C-contiguous)."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _diverging_lut() -> np.ndarray:
    """Blue (negative) - white (zero) - red (positive), as a 256-entry BGR table."""
    t = np.linspace(-1, 1, 256)
    b = np.where(t < 0, 255, 255 * (1 - t))
    r = np.where(t > 0, 255, 255 * (1 + t))
    g = 255 * (1 - np.abs(t))
    return np.stack([b, g, r], axis=-1).astype(np.uint8).reshape(256, 1, 3)


_DIVERGING = _diverging_lut()


def scale(values: np.ndarray, colormap: Colormap) -> np.ndarray:
    """Floats -> 0..255; symmetric around zero for the diverging map."""
    v = values.astype(np.float32)
    if colormap == "diverging":
        peak = float(np.abs(v).max())
        return np.clip(127.5 + 127.5 * v / peak, 0, 255).astype(np.uint8) if peak > 0 else \
            np.full(v.shape, 128, np.uint8)
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return np.zeros(v.shape, np.uint8)
    return ((v - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def colorize(gray: np.ndarray, colormap: Colormap) -> np.ndarray:
    if colormap == "gray":
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if colormap == "diverging":
        return cv2.applyColorMap(gray, _DIVERGING)
    return cv2.applyColorMap(gray, _CV_MAPS[colormap])


def grid(tiles: np.ndarray, colormap: Colormap = "viridis", norm: Norm = "channel",
         tile_px: int = 56, pad: int = 2, columns: int | None = None) -> np.ndarray:
    """``[H, W, N]`` maps (or ``[N]`` dense units) -> one BGR image of N tiles.

    Dense layers become a strip: one cell per unit. Each tile is scaled on its own
    (``channel``) or all on the layer's common range (``layer``)."""
    if tiles.ndim == 1:  # a dense layer: a strip, one cell per unit
        n = tiles.shape[0]
        width = min(n, 64)  # long layers (flatten) wrap into rows of 64 units
        rows = -(-n // width)
        block = np.full(rows * width, np.nan, np.float32)
        block[:n] = tiles
        strip = scale(np.nan_to_num(block, nan=float(tiles.min())).reshape(rows, width),
                      colormap)
        cell = max(4, min(24, 1200 // width))
        return colorize(cv2.resize(strip, (cell * width, cell * rows),
                                   interpolation=cv2.INTER_NEAREST), colormap)
    n = tiles.shape[2]
    scaled = (np.stack([scale(tiles[:, :, i], colormap) for i in range(n)], axis=-1)
              if norm == "channel" else scale(tiles, colormap))
    return tiled([colorize(scaled[:, :, i], colormap) for i in range(n)], tile_px, pad,
                 columns)


def colour_grid(kernels: np.ndarray, tile_px: int = 48, pad: int = 2) -> np.ndarray:
    """Kernels that read a colour picture, ``[kh, kw, 3, N]`` scaled to 0..1, as one BGR
    image of N colour tiles (each kernel's weights on red, green and blue)."""
    return tiled([viewable((np.clip(kernels[:, :, :, i], 0, 1) * 255).astype(np.uint8))
                  for i in range(kernels.shape[3])], tile_px, pad)


def tiled(tiles: list[np.ndarray], tile_px: int, pad: int,
          columns: int | None = None) -> np.ndarray:
    """BGR tiles of one size (``[h, w, 3]``) on a white canvas, each blown up (nearest
    neighbour) to about ``tile_px`` on its longer side, ``columns`` (at most 8) a row."""
    h, w = tiles[0].shape[:2]
    cols = columns or min(len(tiles), 8)
    rows = -(-len(tiles) // cols)
    zoom = max(1, tile_px // max(h, w))
    th, tw = h * zoom, w * zoom
    canvas = np.full((rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        canvas[y:y + th, x:x + tw] = cv2.resize(tile, (tw, th),
                                                interpolation=cv2.INTER_NEAREST)
    return canvas


def viewable(pixels: np.ndarray) -> np.ndarray:
    """What a model sees ``[H, W, C]`` (RGB for 3 channels) as OpenCV draws and encodes
    it: ``[H, W]`` grayscale or ``[H, W, 3]`` BGR."""
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    return pixels.reshape(pixels.shape[:2])


def encode(img: np.ndarray, fmt: ImageFormat, quality: int = 90) -> bytes:
    ext, params = {"png": (".png", []), "jpeg": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality]),
                   "webp": (".webp", [cv2.IMWRITE_WEBP_QUALITY, quality])}[fmt]
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError(f"{fmt} encoding failed")
    return buf.tobytes()


def npy(array: np.ndarray) -> bytes:
    """``array`` as a ``.npy`` file (what ``np.save`` writes), with one copy of its data."""
    head = io.BytesIO()
    arr = np.require(array, requirements="C")  # (keeps a 0-d array 0-d)
    np.lib.format.write_array_header_1_0(head, np.lib.format.header_data_from_array_1_0(arr))
    return head.getvalue() + arr.reshape(-1).view(np.uint8).data


def npz(arrays: dict[str, np.ndarray]) -> bytes:
    """The arrays as ``np.savez`` writes them (an uncompressed ZIP of ``.npy`` members)."""
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def image_response(img: np.ndarray, fmt: ImageFormat,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(encode(img, fmt), media_type=MEDIA[fmt], headers=headers)


def pick_format(requested: str | None, accept: str | None, allowed: tuple[str, ...],
                default: str) -> str:
    """The output format: the ``format`` query wins, then the Accept header's most
    preferred type (by q-value, then order) among ``allowed``, else ``default``."""
    if requested:
        if requested not in allowed:
            raise Unprocessable(f"format {requested!r} not supported; choose one of "
                                f"{', '.join(allowed)}")
        return requested
    by_media = {MEDIA[fmt]: fmt for fmt in allowed if fmt in MEDIA}
    best: tuple[float, int, str] | None = None
    for order, part in enumerate((accept or "").split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        fmt = by_media.get(media.lower())
        if fmt is not None and q > 0 and (best is None or (q, -order) > best[:2]):
            best = (q, -order, fmt)
    return best[2] if best else default
