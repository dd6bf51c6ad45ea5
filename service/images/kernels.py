"""Hand-made kernels over any picture (the tutorials' filter2D, Sobel, Laplacian, blur)
and pooling, as pure functions on float32 arrays.

Correlation is OpenCV's ``filter2D`` (what Conv2D layers compute); ``convolution`` flips
the kernel first (the mathematical definition). Border modes follow OpenCV's names;
``valid`` keeps only pixels whose whole neighbourhood lies inside the image (the
tutorial's "ignore the boundary pixels"), ``wrap`` pads first because filter2D refuses it.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from service.errors import Unprocessable

Border = Literal["valid", "zero", "replicate", "reflect", "reflect101", "wrap"]
Mode = Literal["correlation", "convolution"]
Output = Literal["clip", "abs", "normalize"]
PoolOp = Literal["max", "avg"]

_CV_BORDER = {"zero": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE,
              "reflect": cv2.BORDER_REFLECT, "reflect101": cv2.BORDER_REFLECT_101,
              "wrap": cv2.BORDER_WRAP}

_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)

NAMED: dict[str, np.ndarray] = {
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], np.float64),
    # Orientation names say which side of an edge lights up (correlation):
    "sobel_right": _SOBEL_X,            # bright where the image gets brighter to the right
    "sobel_left": 0.0 - _SOBEL_X,  # (0.0 - x: no negative zeros in the catalogue)
    "sobel_bottom": _SOBEL_X.T.copy(),  # brighter downwards
    "sobel_top": 0.0 - _SOBEL_X.T,
    "laplacian4": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64),
    "laplacian8": np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]], np.float64),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float64),
    "emboss": np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float64),
}
PARAMETRIC = ("box", "gaussian", "sobel_magnitude")


def box(size: int) -> np.ndarray:
    _check_odd_size(size)
    return np.full((size, size), 1.0 / (size * size))


def gaussian(size: int, sigma: float) -> np.ndarray:
    _check_odd_size(size)
    if not (np.isfinite(sigma) and sigma > 0):
        raise Unprocessable(f"gaussian sigma must be a positive number, got {sigma}")
    g = cv2.getGaussianKernel(size, sigma, cv2.CV_64F)
    return g @ g.T


def _check_odd_size(size: int, limit: int = 15) -> None:
    if size < 1 or size % 2 == 0 or size > limit:
        raise Unprocessable(f"kernel size must be odd and between 1 and {limit}, got {size}")


def catalogue() -> dict[str, list[list[float]]]:
    """Every fixed named kernel with its values (parametric ones at their defaults)."""
    out = {name: k.tolist() for name, k in NAMED.items()}
    out["box"] = box(3).tolist()
    out["gaussian"] = gaussian(5, 1.0).tolist()
    out["sobel_magnitude"] = NAMED["sobel_right"].tolist()  # |Gx| and |Gy| combined
    return out


# The largest kernel value applied (after normalising and weighting): pixels stay far
# inside float32's range, so a filtered picture never holds infinity or NaN.
MAX_KERNEL_VALUE = 1e6


def validate_matrix(matrix: object, max_size: int) -> np.ndarray:
    """A custom kernel: rectangular, odd height and width up to ``max_size``, finite."""
    try:
        k = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise Unprocessable("kernel must be a rectangular matrix of numbers") from None
    if k.ndim != 2 or k.size == 0:
        raise Unprocessable(f"kernel must be a 2-D matrix, got shape {list(k.shape)}")
    h, w = k.shape
    if h % 2 == 0 or w % 2 == 0 or h > max_size or w > max_size:
        raise Unprocessable(f"kernel is {h}x{w}; height and width must be odd and at most "
                            f"{max_size}")
    if not np.all(np.isfinite(k)):
        raise Unprocessable("kernel contains NaN or infinity")
    return k


def prepare_kernel(k: np.ndarray, *, weight: float = 1.0, normalize: bool = False,
                   mode: Mode = "correlation") -> np.ndarray:
    """The kernel actually applied: optionally divided by its sum, times ``weight``,
    flipped for true convolution."""
    if not np.isfinite(weight):
        raise Unprocessable(f"weight must be a finite number, got {weight}")
    total = float(k.sum())
    if normalize and total != 0:  # a zero-sum kernel (edges) cannot be normalised
        k = k / total
    k = k * weight
    peak = float(np.abs(k).max())
    if not peak <= MAX_KERNEL_VALUE:  # (also false for NaN)
        raise Unprocessable(f"the kernel applied (after normalising and weighting) has a "
                            f"value of {peak:g}; the limit is ±{MAX_KERNEL_VALUE:g}")
    return np.flip(k).copy() if mode == "convolution" else k


def filter_image(img: np.ndarray, kernel: np.ndarray, border: Border) -> np.ndarray:
    """Correlate ``img`` (``[H,W]`` or ``[H,W,C]``, uint8 or float32) with ``kernel`` ->
    float32. OpenCV reads uint8 pixels directly: no float copy of the picture is made."""
    src = img if img.dtype in (np.uint8, np.float32) else img.astype(np.float32)
    kh, kw = kernel.shape
    mh, mw = kh // 2, kw // 2
    k32 = kernel.astype(np.float32)
    if border == "valid":
        h, w = src.shape[:2]
        if h < kh or w < kw:
            raise Unprocessable(f"image {w}x{h} is smaller than the {kw}x{kh} kernel; "
                                "'valid' leaves no pixels")
        full = cv2.filter2D(src, cv2.CV_32F, k32, borderType=cv2.BORDER_CONSTANT)
        return full[mh:h - mh, mw:w - mw]
    if border == "wrap":
        padded = cv2.copyMakeBorder(src, mh, mh, mw, mw, cv2.BORDER_WRAP)
        out = cv2.filter2D(padded, cv2.CV_32F, k32, borderType=cv2.BORDER_CONSTANT)
        return out[mh:mh + src.shape[0], mw:mw + src.shape[1]]
    return cv2.filter2D(src, cv2.CV_32F, k32, borderType=_CV_BORDER[border])


def sobel_pair() -> tuple[np.ndarray, np.ndarray]:
    """The horizontal and vertical Sobel kernels whose magnitude ``sobel_magnitude`` is."""
    return NAMED["sobel_right"], NAMED["sobel_bottom"]


def sobel_magnitude(img: np.ndarray, border: Border) -> np.ndarray:
    """sqrt(gx^2 + gy^2) of the two Sobel responses (written over gx: one float map
    fewer)."""
    kx, ky = sobel_pair()
    gx = np.ascontiguousarray(filter_image(img, kx, border))
    gy = np.ascontiguousarray(filter_image(img, ky, border))
    return cv2.magnitude(gx, gy, gx)  # type: ignore[no-any-return]


# Float values to_uint8 works on at once: its temporary is a strip of rows this size, not
# a second copy of the picture (a 4096 x 4096 colour picture's floats are 192 MiB)
STRIP_VALUES = 1 << 20


def to_uint8(values: np.ndarray, output: Output) -> np.ndarray:
    """Floats -> displayable bytes: clip to 0..255 (the tutorial's rule), abs, or min-max.
    ``values`` is left as it is; the work is done a strip of rows at a time."""
    shift, scale = 0.0, 1.0
    if output == "normalize":
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        shift, scale = lo, (255.0 / (hi - lo) if hi > lo else 0.0)
    out = np.empty(values.shape, np.uint8)
    rows = max(1, STRIP_VALUES // max(1, values[:1].size))
    for top in range(0, len(values), rows):
        strip = values[top:top + rows]
        if output == "abs":
            work = np.abs(strip)
        elif output == "normalize":
            work = strip - shift
            work *= scale
        else:
            work = strip.copy()  # (values stays as it is)
        np.clip(work, 0, 255, out=work)
        np.rint(work, out=work)
        out[top:top + rows] = work
    return out


def pool(img: np.ndarray, op: PoolOp = "max", size: int = 2, stride: int | None = None
         ) -> np.ndarray:
    """Max or average pooling; windows that would run past an edge are dropped
    (Keras's ``padding="valid"``: a 7-pixel side pools to 3 with size 2, stride 2)."""
    stride = stride or size
    if size < 1 or stride < 1 or size > 64 or stride > 64:
        raise Unprocessable(f"pool size and stride must be 1..64, got {size} and {stride}")
    h, w = img.shape[:2]
    if h < size or w < size:
        raise Unprocessable(f"image {w}x{h} is smaller than the {size}x{size} pool window")
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    src = img.astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(src, (size, size), axis=(0, 1))
    windows = windows[::stride, ::stride][:oh, :ow]  # [oh, ow, (C,) size, size]
    reduce = np.max if op == "max" else np.mean
    return reduce(windows, axis=(-2, -1)).astype(np.float32)
