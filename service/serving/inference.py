"""The steps every face shares: uploaded pictures -> model input, model input -> outputs
through the version's batcher, outputs -> ranked classes.

    prepare_uploads   decode + preprocess (``service.images.preprocess``)
    predict           the dynamic batcher and the model runner (``serving_default``)
    call_signature    the other signatures (activations, gradcam, filters), unbatched
    top_k             ranked classes of one image
    to_uint8_tensor   numbers sent as a tensor, checked as pixel values of a model input
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from service.errors import ApiError, overloaded
from service.images.preprocess import Invert, Prepared, PreprocessSpec, preprocess, stack
from service.runtime.settings import Settings
from service.serving.batcher import BatcherClosed, QueueFull
from service.serving.version import ModelInfo, ServedVersion

T = TypeVar("T")

# Small inputs are handled inline, faster than the hop to a worker thread; large ones
# (big JSON tensors, big pictures) go to a thread so the event loop keeps serving others.
INLINE_BYTES = 64 * 1024


async def offload(size: int, fn: Callable[..., T], *args: Any) -> T:
    """Run CPU-bound ``fn`` inline when its input of ``size`` bytes is small, else in a
    worker thread."""
    if size <= INLINE_BYTES:
        return fn(*args)
    return await run_in_threadpool(fn, *args)


def preprocess_spec(info: ModelInfo, settings: Settings, invert: Invert,
                    center: bool | None) -> PreprocessSpec:
    """How uploads become ``info``'s input. MNIST-style centering suits digits, not
    clothing (it fills its frame): on by default for digit models only."""
    if info.channels != 1:
        raise ApiError(400, f"image uploads need a 1-channel model; this one takes "
                            f"{info.channels} channels (send tensors instead)")
    return PreprocessSpec(info.height, info.width, invert,
                          info.dataset == "mnist" if center is None else center,
                          settings.max_image_pixels)


def pictures_input(info: ModelInfo, blobs: list[bytes], settings: Settings) -> np.ndarray:
    """Encoded pictures sent inside a tensor (TF Serving's b64 values, a DT_STRING tensor)
    -> ``info``'s input ``[N,H,W,1]``, preprocessed as uploads are by default."""
    return stack(preprocess(blobs, preprocess_spec(info, settings, "auto", None)))


async def prepare_uploads(info: ModelInfo, blobs: list[bytes], settings: Settings,
                          invert: Invert = "auto", center: bool | None = None
                          ) -> list[Prepared]:
    """Encoded pictures -> ``info``'s input (``ApiError`` for a picture it cannot read)."""
    spec = preprocess_spec(info, settings, invert, center)
    return await offload(sum(len(b) for b in blobs), preprocess, blobs, spec)


async def predict(sv: ServedVersion, images: np.ndarray, settings: Settings) -> np.ndarray:
    """``serving_default``'s output for ``images`` through the version's dynamic batcher;
    its refusals become 503s."""
    assert sv.batcher is not None, "a served version always has a batcher"
    try:
        return await sv.batcher.submit(images, settings.request_timeout_s)
    except QueueFull as exc:
        raise overloaded(f"model {sv.name!r} version {sv.version} is overloaded: {exc}") from None
    except BatcherClosed:
        raise overloaded(f"model {sv.name!r} version {sv.version} is unloading; retry") from None
    except TimeoutError:
        raise overloaded(f"inference did not finish within {settings.request_timeout_s} s") \
            from None


async def call_signature(sv: ServedVersion, signature: str,
                         **inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Run a signature other than ``serving_default`` on the inference executor."""
    if signature not in sv.signatures:
        raise ApiError(400, f"model {sv.name!r} version {sv.version} has no {signature!r} "
                            f"signature (it has {', '.join(sorted(sv.signatures))})")
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(sv.executor, lambda: sv.call_sync(signature, **inputs))


def top_k(values: list[float], class_names: list[str], k: int) -> list[dict[str, Any]]:
    """The ``k`` most probable classes of one image's probabilities ``values`` (plain
    floats: take ``probs.tolist()`` once for a whole batch)."""
    best = sorted(range(len(values)), key=values.__getitem__, reverse=True)[:k]
    return [{"class_index": i, "label": class_names[i] if i < len(class_names) else str(i),
             "probability": values[i]} for i in best]


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
