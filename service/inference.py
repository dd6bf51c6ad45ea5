"""Steps shared by every face: decode + preprocess uploads, run the batched model,
rank classes. Kept apart so each step is testable on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from service.batcher import BatcherClosed, QueueFull
from service.config import Settings
from service.errors import ApiError, overloaded
from service.imaging import Invert, Prepared, decode, prepare_batch
from service.model import ModelInfo, ServedVersion

T = TypeVar("T")

# Small inputs are handled faster inline than the hop to a worker thread costs; large ones
# (big JSON tensors, big pictures) go to a thread so the event loop keeps serving others.
_INLINE_DECODE_BYTES = 64 * 1024
# Requests of up to this many pictures are preprocessed when their batch forms.
_DEFER_MAX_IMAGES = 8


async def offload(size: int, fn: Callable[..., T], *args: Any) -> T:
    """Run CPU-bound ``fn`` inline when ``size`` bytes is small, else in a worker thread."""
    if size <= _INLINE_DECODE_BYTES:
        return fn(*args)
    return await run_in_threadpool(fn, *args)


def default_center(info: ModelInfo) -> bool:
    """MNIST-style centering suits digits; clothing fills its frame, so not for it."""
    return info.dataset == "mnist"


def _stack(prepared: list[Prepared]) -> np.ndarray:
    return prepared[0].pixels[None] if len(prepared) == 1 else np.stack(
        [p.pixels for p in prepared])


@dataclass
class Uploads:
    """The pictures of one request, to be preprocessed for one model input.

    Calling it preprocesses them (``prepared`` keeps the result for the response); a
    batch worker that holds several requests' ``Uploads`` calls ``make_many`` instead,
    which decodes each picture and then prepares the pictures of all those requests
    together (``imaging.prepare_batch``: one numpy pass per shape, not per picture)."""

    blobs: list[bytes]
    info: ModelInfo
    max_pixels: int
    invert: Invert
    center: bool
    prepared: list[Prepared] = field(default_factory=list)

    def __call__(self) -> np.ndarray:
        result = self.make_many([self])[0]
        if isinstance(result, Exception):
            raise result
        return result

    @staticmethod
    def make_many(requests: list[Uploads]) -> list[np.ndarray | Exception]:
        """Each request's model input ``[n,H,W,1]``, or the error that fails it alone."""
        decoded: list[list[np.ndarray] | Exception] = []
        for req in requests:
            try:
                decoded.append([decode(b, req.max_pixels) for b in req.blobs])
            except Exception as exc:  # ApiError for a bad picture: that request fails
                decoded.append(exc)
        groups: dict[tuple[Invert, bool, int, int], list[tuple[Uploads, list[np.ndarray]]]] = {}
        for req, grays in zip(requests, decoded, strict=True):
            if not isinstance(grays, Exception):
                key = (req.invert, req.center, req.info.height, req.info.width)
                groups.setdefault(key, []).append((req, grays))
        for (invert, center, height, width), members in groups.items():
            prepared = prepare_batch([g for _, grays in members for g in grays], height,
                                     width, invert=invert, center=center)
            start = 0
            for req, grays in members:
                req.prepared = prepared[start:start + len(grays)]
                start += len(grays)
        return [grays if isinstance(grays, Exception) else _stack(req.prepared)
                for req, grays in zip(requests, decoded, strict=True)]


def uploads_for(blobs: list[bytes], info: ModelInfo, settings: Settings, invert: Invert,
                center: bool | None) -> Uploads:
    """``blobs`` as uploads for ``info``'s input, checked now, preprocessed later."""
    if info.channels != 1:
        raise ApiError(400, f"image uploads need a 1-channel model; this one takes "
                            f"{info.channels} channels (send tensors instead)")
    do_center = default_center(info) if center is None else center
    return Uploads(blobs, info, settings.max_image_pixels, invert, do_center)


async def prepare_many(blobs: list[bytes], info: ModelInfo, settings: Settings,
                       invert: Invert, center: bool | None) -> list[Prepared]:
    uploads = uploads_for(blobs, info, settings, invert, center)
    await offload(sum(len(b) for b in blobs), uploads)
    return uploads.prepared


async def classify_blobs(sv: ServedVersion, blobs: list[bytes], settings: Settings,
                         invert: Invert, center: bool | None,
                         ) -> tuple[list[Prepared], np.ndarray]:
    """Preprocess uploaded pictures and run them through the version's batcher.

    A request of a few small pictures is preprocessed by the batch worker when its batch
    forms, together with the other requests in it (``Uploads.make_many``): decoding and
    centering then find their code and data in the CPU caches, and the numpy steps run
    once for the batch instead of once a picture. A request of many pictures is already
    a batch of its own, and preparing it before queueing overlaps it with the running
    batch (the deferred way measured -6 % for 64-image requests); large uploads go to a
    thread."""
    uploads = uploads_for(blobs, sv.info, settings, invert, center)
    defer_max = min(_DEFER_MAX_IMAGES, settings.max_batch_size)  # a deferred one fits a batch
    size = sum(len(b) for b in blobs)
    if size > _INLINE_DECODE_BYTES or len(blobs) > defer_max:
        images = await offload(size, uploads)
        return uploads.prepared, await run_batched(sv, images, settings)
    probs = await _batched(sv, settings, sv.predict_deferred(
        len(blobs), uploads, settings.request_timeout_s))
    return uploads.prepared, probs


async def run_batched(sv: ServedVersion, images: np.ndarray, settings: Settings) -> np.ndarray:
    """Probabilities for ``images`` through the version's dynamic batcher."""
    return await _batched(sv, settings, sv.predict(images, settings.request_timeout_s))


async def _batched(sv: ServedVersion, settings: Settings,
                   call: Coroutine[Any, Any, np.ndarray]) -> np.ndarray:
    """Await a batcher call, its refusals turned into 503s."""
    try:
        return await call
    except QueueFull as exc:
        raise overloaded(f"model {sv.name!r} version {sv.version} is overloaded: {exc}") from None
    except BatcherClosed:
        raise overloaded(f"model {sv.name!r} version {sv.version} is unloading; retry") from None
    except TimeoutError:
        raise ApiError(503, f"inference did not finish within {settings.request_timeout_s} s",
                       {"Retry-After": "1"}) from None


async def call_signature(sv: ServedVersion, signature: str,
                         **inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Run a non-batched signature (activations, gradcam, ...) on the inference executor."""
    if signature not in sv.signatures:
        raise ApiError(400, f"model {sv.name!r} version {sv.version} has no {signature!r} "
                            f"signature (it has {', '.join(sorted(sv.signatures))})")
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(sv.executor, lambda: sv.call_sync(signature, **inputs))


@dataclass(frozen=True)
class Ranked:
    index: int
    label: str
    probability: float


def _best(values: list[float], k: int) -> list[int]:
    # plain floats: sorting 10 of them in Python beats a numpy call
    return sorted(range(len(values)), key=values.__getitem__, reverse=True)[:k]


def _label(class_names: list[str], i: int) -> str:
    return class_names[i] if i < len(class_names) else str(i)


def top_k(probs: np.ndarray, class_names: list[str], k: int) -> list[Ranked]:
    values = probs.tolist()
    return [Ranked(i, _label(class_names, i), values[i]) for i in _best(values, k)]


def top_k_json(values: list[float], class_names: list[str], k: int) -> list[dict[str, Any]]:
    """The ``k`` most probable classes of one image's ``values`` (plain floats: take
    ``probs.tolist()`` once for a whole batch), as the upload route answers them."""
    return [{"class_index": i, "label": _label(class_names, i), "probability": values[i]}
            for i in _best(values, k)]


def to_uint8_tensor(value: object, shape: list[int], what: str) -> np.ndarray:
    """Validate JSON numbers as pixel values 0..255 of a ``[N,H,W,C]`` model input."""
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
