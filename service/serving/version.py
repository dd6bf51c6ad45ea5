"""One loaded model version: its SavedModel signatures, metadata and batcher."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from cnnlab.layout import METADATA_FILE
from service.errors import first_line
from service.serving import choice
from service.serving.batcher import DynamicBatcher
from service.serving.calls import images_per_call
from service.serving.onnx_runner import OnnxRunner, onnx_runner
from service.serving.runner import SessionRunner, session_runner

log = logging.getLogger(__name__)

PREDICT_SIGNATURE = "serving_default"


class LoadError(Exception):
    """A version directory could not be turned into a servable model."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str              # numpy dtype name, e.g. "uint8", "float32"
    shape: list[int]        # -1 for unknown dimensions


@dataclass(frozen=True)
class ModelInfo:
    """What the service knows of a version: from ``metadata.json`` when present, else
    read off the ``serving_default`` signature (a SavedModel exported elsewhere)."""

    input: TensorInfo
    output: TensorInfo      # the class probabilities
    outputs: dict[str, TensorInfo]  # every output of serving_default, by name
    class_names: list[str]
    dataset: str | None
    metadata: dict[str, Any]

    @property
    def height(self) -> int:
        return self.input.shape[1]

    @property
    def width(self) -> int:
        return self.input.shape[2]

    @property
    def channels(self) -> int:
        return self.input.shape[3]


def _tensor_info(name: str, spec: tf.TensorSpec) -> TensorInfo:
    shape = [-1 if d is None else int(d) for d in spec.shape.as_list()]
    return TensorInfo(name=name, dtype=spec.dtype.as_numpy_dtype.__name__, shape=shape)


def signature_io(fn: Any) -> tuple[dict[str, TensorInfo], dict[str, TensorInfo]]:
    inputs = {k: _tensor_info(k, v) for k, v in fn.structured_input_signature[1].items()}
    outputs = {k: _tensor_info(k, v) for k, v in fn.structured_outputs.items()}
    return inputs, outputs


def _read_info(path: Path, serving: Any) -> ModelInfo:
    inputs, outputs = signature_io(serving)
    if len(inputs) != 1:
        raise LoadError(f"serving_default must take one image tensor, takes {sorted(inputs)}")
    inp = next(iter(inputs.values()))
    if len(inp.shape) != 4 or any(d < 1 for d in inp.shape[1:]):
        raise LoadError(f"serving_default input must be [N,H,W,C] with known H,W,C, "
                        f"got {inp.shape}")
    out = outputs.get("probabilities") or outputs[sorted(outputs)[0]]
    meta: dict[str, Any] = {}
    meta_path = path / METADATA_FILE
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError as exc:
            raise LoadError(f"{METADATA_FILE} is not valid JSON: {exc}") from None
    k = out.shape[-1]
    names = meta.get("class_names") or [str(i) for i in range(max(k, 0))]
    return ModelInfo(input=inp, output=out, outputs=outputs, class_names=list(names),
                     dataset=meta.get("dataset"), metadata=meta)


@dataclass
class ServedVersion:
    """A loaded, warmed version. ``inflight`` counts leases; unloading waits for zero."""

    name: str
    version: int
    path: Path
    module: Any
    signatures: dict[str, Any]
    info: ModelInfo
    device: str
    load_seconds: float
    warmup_seconds: float = 0.0
    inflight: int = 0
    batcher: DynamicBatcher | None = None
    executor: Executor | None = None  # the repository's inference thread(s)
    # serving_default in a Session (service.serving.runner) or ONNX Runtime (onnx_runner)
    runner: SessionRunner | OnnxRunner | None = None
    # each runtime's times at load, when ``auto`` chose between them (service.serving.choice)
    timings: dict[str, choice.Timing] = field(default_factory=dict)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    # --- synchronous calls (run on the inference executor, never on the event loop)
    def predict_sync(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every output of ``serving_default`` for ``images``, by name."""
        if self.runner is not None:
            return self.runner(images)
        fn = self.signatures[PREDICT_SIGNATURE]
        x = tf.constant(images.astype(self.info.input.dtype, copy=False))
        return {k: v.numpy() for k, v in fn(**{self.info.input.name: x}).items()}

    def call_sync(self, signature: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        fn = self.signatures[signature]
        out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}

    # --- leases
    def acquire(self) -> None:
        self.inflight += 1
        self._idle.clear()

    def release(self) -> None:
        self.inflight -= 1
        if self.inflight <= 0:
            self._idle.set()

    async def drained(self) -> None:
        await self._idle.wait()

    @property
    def runtime(self) -> str:
        """What runs predictions: ``onnxruntime``, ``tensorflow`` (a Session) or
        ``tensorflow-signature`` (the loaded signature, when no Session can run it)."""
        if self.runner is None:
            return "tensorflow-signature"
        return "onnxruntime" if isinstance(self.runner, OnnxRunner) else "tensorflow"

    @property
    def runs_as(self) -> str:
        """How predictions run, for the logs."""
        if self.runner is None:
            how = "through the loaded signature"
        elif isinstance(self.runner, OnnxRunner):
            how = "with ONNX Runtime"
        else:
            how = "in a Session, graph frozen" if self.runner.frozen else "in a Session"
        if not self.timings:
            return how
        times = " against ".join(f"{name} {timing.describe()}"
                                 for name, timing in self.timings.items())
        return f"{how}, the faster at load: {times}"

    def close(self) -> None:
        """Free what the version holds: its Session, and its references to the loaded
        SavedModel and the batcher, so the garbage collector can free them
        (``service.runtime.heap.give_back``)."""
        if self.runner is not None:
            self.runner.close()
            self.runner = None
        self.module = None
        self.signatures = {}
        self.batcher = None


def load_version(name: str, version: int, path: Path, device: str, *,
                 intra_op_threads: int = 0, runtime: str = "auto") -> ServedVersion:
    """Load a SavedModel directory (blocking; call in a worker thread). Predictions run
    with ONNX Runtime when ``runtime`` allows it and the version has a ``model.onnx`` that
    agrees with TensorFlow (``service.serving.onnx_runner``) — under ``auto`` only on the
    CPU and unless TensorFlow is the faster there (``service.serving.choice``); else in a
    Session over a frozen copy of its graph (``service.serving.runner``) when one can be
    built, else through the loaded signature."""
    started = time.perf_counter()
    try:
        with tf.device(device):
            module = tf.saved_model.load(str(path))
    except Exception as exc:  # TF raises many types for corrupt protobufs / variables
        raise LoadError(f"cannot load SavedModel: {first_line(exc, 300)}") from None
    signatures = dict(module.signatures)
    if PREDICT_SIGNATURE not in signatures:
        raise LoadError(f"no {PREDICT_SIGNATURE!r} signature (has {sorted(signatures)})")
    info = _read_info(path, signatures[PREDICT_SIGNATURE])
    on_gpu = "GPU" in device.upper()
    # on the CPU a big batch runs as calls of a few milliseconds' work; a GPU takes it whole
    # (ONNX Runtime runs on the CPU only)
    call_images = images_per_call(info.input.shape[1:])
    session = session_runner(path, PREDICT_SIGNATURE, info.input.name, sorted(info.outputs),
                             info.input.dtype, intra_op_threads,
                             call_images=None if on_gpu else call_images)
    runner: SessionRunner | OnnxRunner | None = session
    timings: dict[str, choice.Timing] = {}
    if runtime == "onnxruntime" or (runtime == "auto" and not on_gpu):
        runner, timings = _with_onnx(path, info, signatures[PREDICT_SIGNATURE], session,
                                     intra_op_threads, call_images, choose=runtime == "auto")
    return ServedVersion(name=name, version=version, path=path, module=module,
                         signatures=signatures, info=info, device=device, runner=runner,
                         timings=timings, load_seconds=time.perf_counter() - started)


def _with_onnx(path: Path, info: ModelInfo, signature: Any, session: SessionRunner | None,
               intra_op_threads: int, call_images: int, *, choose: bool
               ) -> tuple[SessionRunner | OnnxRunner | None, dict[str, choice.Timing]]:
    """ONNX Runtime's runner when the version's ``model.onnx`` agrees with TensorFlow and
    (``choose``) TensorFlow's Session is not clearly the faster on this CPU
    (``service.serving.choice``); else ``session``. And the runtimes' times when timed.
    The runner not returned is closed."""

    def tensorflow(images: np.ndarray) -> dict[str, np.ndarray]:
        if session is not None:
            return session(images)
        out = signature(**{info.input.name: tf.constant(images)})
        return {k: v.numpy() for k, v in out.items()}

    checked = onnx_runner(path, sorted(info.outputs), info.input.dtype, intra_op_threads,
                          tensorflow, call_images)
    if checked is None:
        return session, {}
    onnx, pictures = checked
    timings: dict[str, choice.Timing] = {}
    if choose and session is not None:
        timings = choice.timed({"onnxruntime": onnx, "tensorflow": session}, pictures,
                               call_images)
        if choice.tensorflow_is_faster(timings["onnxruntime"], timings["tensorflow"]):
            onnx.close()
            return session, timings
    if session is not None:
        session.close()  # (the Session's memory back: ONNX Runtime serves)
    return onnx, timings


def warm_up(sv: ServedVersion, max_batch: int) -> float:
    """Run every image signature once so the first real request pays no tracing cost."""
    started = time.perf_counter()
    shape = [sv.info.height, sv.info.width, sv.info.channels]
    for n in sorted({1, max_batch}):
        sv.predict_sync(np.zeros([n, *shape], dtype=np.uint8))
    if "activations" in sv.signatures:
        sv.call_sync("activations", image=np.zeros([1, *shape], dtype=np.uint8))
    sv.warmup_seconds = time.perf_counter() - started
    return sv.warmup_seconds
