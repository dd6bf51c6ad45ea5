"""JSON tensors of the TF Serving and V2 faces, checked as pixel values of a model input."""

from __future__ import annotations

import numpy as np

from service.errors import ApiError


def to_uint8_tensor(value: object, shape: list[int], what: str) -> np.ndarray:
    """Validate numbers as pixel values 0..255 of a ``[N,H,W,C]`` model input."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ApiError(400, f"{what}: must be numbers (nested lists), got something else") \
            from None
    if not np.all(np.isfinite(arr)):
        raise ApiError(400, f"{what}: contains NaN or infinity")
    if arr.size and (arr.min() < 0 or arr.max() > 255 or np.any(arr != np.round(arr))):
        raise ApiError(400, f"{what}: pixel values must be integers 0..255 "
                            "(the model rescales inside)")
    h, w, c = shape[1:]
    if arr.ndim == 3 and c == 1 and arr.shape[1:] == (h, w):
        arr = arr[..., None]  # [N,H,W] -> [N,H,W,1]
    if arr.ndim != 4 or tuple(arr.shape[1:]) != (h, w, c):
        raise ApiError(400, f"{what}: shape {list(arr.shape)} does not match the model input "
                            f"[N,{h},{w},{c}]")
    return arr.astype(np.uint8)
