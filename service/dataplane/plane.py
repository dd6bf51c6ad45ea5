"""The DataPlane: every face's one way to the models and the image operations.

A face converts its wire format into the typed requests of ``service.dataplane.requests``
and calls one method here; the answer comes back as arrays (or a domain error, which the
face maps to its protocol's code once). Each method reads forward as the same steps:

    resolve and lease the version -> check the budgets -> decode / preprocess /
    materialise (inline when small, else on the compute pool) -> batch and run the model
    (predictions through the version's batcher, inspection signatures on their own
    admission-controlled pool) -> hand back arrays for the face to encode
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import cv2
import numpy as np

from cnnlab.centering import centres_uploads, fit_longest_side
from service.capture.writer import CaptureWriter
from service.dataplane import budgets, tensors
from service.dataplane.classes import top_classes
from service.dataplane.examples import Feature, example_inputs
from service.dataplane.memory import BodyMemory
from service.dataplane.requests import (
    PREDICT_SIGNATURE,
    InferRequest,
    Input,
    ModelRef,
    Pictures,
    Tensor,
)
from service.dataplane.results import (
    EXPLAIN_METHODS,
    GRAD_CAM,
    IG_STEPS,
    INTEGRATED_GRADIENTS,
    Classified,
    Explanation,
    InferResult,
    Scores,
    VersionStats,
    served,
)
from service.dataplane.work import WorkPool, run_small_inline
from service.errors import (
    InvalidInput,
    NotFound,
    Overloaded,
    TimedOut,
    TooLarge,
    Unprocessable,
    parse_json,
)
from service.images.decode import decode
from service.images.kernels import filter_image
from service.images.operations import Operation, apply
from service.images.preprocess import Prepared, PreprocessSpec, preprocess, stack
from service.runtime import deadline
from service.runtime.metrics import LAST_INFERENCE, version_totals
from service.runtime.settings import Settings
from service.serving import inspection
from service.serving.batcher import BatcherClosed, QueueFull
from service.serving.calls import Outputs
from service.serving.entry import VersionStatus
from service.serving.repository import ModelRepository
from service.serving.version import ServedVersion, TensorInfo, signature_io

T = TypeVar("T")

OOD_SCORE, IN_DISTRIBUTION = "ood_score", "in_distribution"  # a scored version's outputs
# Work this small runs inline, cheaper than the hop to a thread and bounded: decoded pixels
# of a request's pictures (a few dozen digits), bytes of a JSON body or answer.
INLINE_PIXELS = 32 * 1024
INLINE_BYTES = 64 * 1024
APPLY_SIDE = 256  # learned filters are applied to a picture at most this long a side


class DataPlane:
    def __init__(self, repo: ModelRepository, settings: Settings,
                 capture: CaptureWriter | None = None,
                 bodies: BodyMemory | None = None) -> None:
        self.repo = repo
        self.settings = settings
        self.capture = capture
        # the bytes of request bodies and gRPC messages this worker holds (one budget)
        self.bodies = bodies or BodyMemory(settings.max_body_memory_bytes)
        timeout = settings.request_timeout_s
        self.compute = WorkPool("compute", settings.compute_threads, settings.compute_queue,
                                timeout)
        self.inspection = WorkPool("inspection", settings.inspect_threads,
                                   settings.inspect_queue, timeout)

    def close(self) -> None:
        self.compute.shutdown()
        self.inspection.shutdown()
        if self.capture is not None:
            self.capture.close()

    # ------------------------------------------------------------------ repository views
    def resolve(self, ref: ModelRef) -> ServedVersion:
        return self.repo.resolve(ref.name, ref.version, ref.label)

    def lease(self, ref: ModelRef) -> contextlib.AbstractAsyncContextManager[ServedVersion]:
        """Hold the version ``ref`` names for one request (not unloaded until released)."""
        return self.repo.lease(ref.name, ref.version, ref.label)

    def status(self, name: str, version: int | str | None = None,
               label: str | None = None) -> list[VersionStatus]:
        """The versions of ``name`` and their states (one, when a version or label is
        given); ``NotFound`` for an unknown model or version."""
        rows = self.repo.status(name)
        if label is not None:
            version = self.repo.resolve(name, label=label).version
        if version is None:
            return rows
        wanted = [r for r in rows if str(r.version) == str(version)]
        if not wanted:
            raise NotFound(f"model {name!r} has no version {version!r}")
        return wanted

    def ready(self, name: str, version: int | str | None = None) -> bool:
        """Whether ``name`` (or one of its versions) takes traffic; ``NotFound`` for an
        unknown model or version, as Triton answers."""
        entry = self.repo.entry(name)
        if version is None:
            return bool(entry.served)
        self.status(name, version)
        return int(version) in entry.served

    def statistics(self, name: str | None = None,
                   version: int | str | None = None) -> list[VersionStats]:
        """Counts and durations of every available version (of one model, or one version)."""
        if name is None:
            chosen = [(n, v) for n in sorted(self.repo.models) for v in self.repo.models[n].served]
        elif version is not None:
            chosen = [(name, self.repo.resolve(name, version).version)]
        else:
            chosen = [(name, v) for v in sorted(self.repo.entry(name).served)]
        return [self._stats(n, v) for n, v in chosen]

    def _stats(self, name: str, version: int) -> VersionStats:
        totals = version_totals(self.repo.metrics, self.repo.metrics_dir, name, str(version))

        def count(metric: str) -> int:
            return int(totals.get(f"{metric}_count", 0))

        def ns(metric: str) -> int:
            return int(totals.get(f"{metric}_sum", 0) * 1e9)

        return VersionStats(
            name, version, inferences=int(totals.get("cnnlab_batch_size_sum", 0)),
            executions=count("cnnlab_batch_size"),
            queue_count=count("cnnlab_queue_seconds"), queue_ns=ns("cnnlab_queue_seconds"),
            compute_count=count("cnnlab_inference_seconds"),
            compute_ns=ns("cnnlab_inference_seconds"),
            last_inference_ms=int(totals.get(LAST_INFERENCE, 0) * 1000))

    # ------------------------------------------------------------------ inference
    async def infer(self, request: InferRequest) -> InferResult:
        """One batch through one signature; ``serving_default`` through the batcher."""
        async with self.lease(request.model) as sv:
            produced = self._signature_outputs(sv, request.signature)
            unknown = [o for o in request.outputs if o not in produced]
            if unknown:
                raise InvalidInput(f"unknown output {unknown[0]!r}; signature "
                                   f"{request.signature!r} gives {sorted(produced)}")
            cost = self.check_inputs(sv, request.inputs)
            if request.json_answer:  # (the answer's size is known before anything is decoded)
                returned = request.outputs or self._default_outputs(sv, request.signature,
                                                                    produced)
                budgets.json_answer({k: produced[k] for k in returned}, cost.images,
                                    self.settings, "ask for fewer images or outputs")
            images = await self._materialise(sv, request.inputs, cost)
            if request.signature == PREDICT_SIGNATURE:
                outputs = await self.predict(sv, images)
            else:
                budgets.outputs(produced, len(images), self.settings,
                                f"signature {request.signature!r}")
                outputs = await self.call_signature(sv, request.signature,
                                                    **{sv.info.input.name: images})
        wanted = request.outputs or self._default_outputs(sv, request.signature, outputs)
        outputs = {k: outputs[k] for k in dict.fromkeys(wanted)}  # in the order asked
        for name, count in request.class_counts.items():
            if name not in outputs:
                raise InvalidInput(f"classification of output {name!r}: it is not returned "
                                   f"(outputs: {sorted(outputs)})")
            outputs[name] = top_classes(outputs[name], count, sv.info.class_names,
                                        f"output {name!r}")
        return InferResult(sv.name, sv.version, outputs)

    async def scores(self, ref: ModelRef, examples: Sequence[Mapping[str, Feature]],
                     context: Mapping[str, Feature]) -> Scores:
        """Class probabilities of a batch of examples (``service.dataplane.examples``),
        with the version's class names (TF Serving's Classify)."""
        async with self.lease(ref) as sv:
            want = sv.info.input
            images = await self.model_input(
                sv, example_inputs(examples, context, want.name, want.shape))
            probs = (await self.predict(sv, images))[sv.info.output.name]
        return Scores(sv.name, sv.version, sv.info.class_names, probs)

    async def explain(self, ref: ModelRef, inputs: Sequence[Input],
                      method: str = GRAD_CAM) -> Explanation:
        """Grad-CAM and saliency of each image for its predicted class (KServe's explain
        verb), and with ``INTEGRATED_GRADIENTS`` each pixel's attribution too, from
        ``IG_STEPS`` more gradients per image, within the inspection budgets."""
        if method not in EXPLAIN_METHODS:
            raise InvalidInput(f"unknown explanation method {method!r}; methods are "
                               f"{', '.join(EXPLAIN_METHODS)}")
        steps = IG_STEPS if method == INTEGRATED_GRADIENTS else 0
        async with self.lease(ref) as sv:
            inspection.require(sv, "gradcam", "explanations")
            _, produced = signature_io(sv.signatures["gradcam"])
            if steps and "gradient" not in produced:
                raise Unprocessable(f"integrated gradients need the signed input gradient, "
                                    f"which model {sv.name!r} version {sv.version} does not "
                                    "give; re-export it with python -m training reexport")
            images = await self.model_input(sv, inputs)
            budgets.outputs(produced, len(images) * (1 + steps), self.settings,
                            "explanations")
            out = await self.call_signature(
                sv, "gradcam", image=images, class_index=np.full(len(images), -1, np.int32))
            chosen = out["class_index"].astype(np.int32)
            attributions = None
            if steps:
                along = await self.call_signature(
                    sv, "gradcam", image=inspection.scaled_path(images, steps),
                    class_index=np.repeat(chosen, steps))
                attributions = inspection.integrated_gradients(images, along["gradient"])
        layer = inspection.conv_layers(sv)[-1]
        return Explanation(sv.name, sv.version, sv.info.class_names, layer, images, chosen,
                           out["probabilities"][np.arange(len(chosen)), chosen],
                           out[f"gradcam/{layer}"], out["saliency"], attributions)

    async def classify(self, ref: ModelRef, pictures: Pictures) -> Classified:
        """Uploaded pictures -> probabilities, keeping how each was prepared; then, when
        capture samples the request, handed to the capture writer (never waited for)."""
        async with self.lease(ref) as sv:
            prepared = await self.prepare(sv, pictures)
            out = await self.predict(sv, stack(prepared))
        result = Classified(sv.name, sv.version, sv.info.class_names, prepared,
                            out[sv.info.output.name], out.get(OOD_SCORE),
                            out.get(IN_DISTRIBUTION))
        if self.capture is not None and self.capture.sampled():
            self.capture.offer(served(result, pictures.blobs))
        return result

    @staticmethod
    def _default_outputs(sv: ServedVersion, signature: str,
                         outputs: Mapping[str, object]) -> Sequence[str]:
        """What a client that names no outputs gets: every output of a signature, except
        that ``serving_default`` answers with its probabilities, as it always has; its OOD
        outputs come when asked for by name."""
        return [sv.info.output.name] if signature == PREDICT_SIGNATURE else list(outputs)

    def _signature_outputs(self, sv: ServedVersion, signature: str) -> dict[str, TensorInfo]:
        """The outputs of an image-only signature of ``sv``."""
        fn = sv.signatures.get(signature)
        if fn is None:
            raise InvalidInput(f"signature {signature!r} not found; model {sv.name!r} "
                               f"version {sv.version} has {sorted(sv.signatures)}")
        inputs, outputs = signature_io(fn)
        if set(inputs) != {sv.info.input.name}:
            raise InvalidInput(f"signature {signature!r} needs inputs {sorted(inputs)}; "
                               "only image-only signatures can be called this way")
        return outputs

    async def model_input(self, sv: ServedVersion, inputs: Sequence[Input]) -> np.ndarray:
        """The parts of a batch -> ``sv``'s input ``[N,H,W,C]``: the whole request's budgets
        first (every part together), then each part decoded in turn, within the request's
        one deadline."""
        return await self._materialise(sv, inputs, self.check_inputs(sv, inputs))

    async def _materialise(self, sv: ServedVersion, inputs: Sequence[Input],
                           cost: budgets.RequestCost) -> np.ndarray:
        """Parts whose budgets were checked (``cost``) -> ``sv``'s input, one at a time."""
        parts = []
        for part, part_pixels in zip(inputs, cost.part_pixels, strict=True):
            deadline.check()
            parts.append(stack(await self._decode(sv, part, part_pixels))
                         if isinstance(part, Pictures) else await self._tensor(sv, part))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def _tensor(self, sv: ServedVersion, tensor: Tensor) -> np.ndarray:
        """A declared tensor (its declaration already checked) -> ``sv``'s input: the values
        read inline when few, else on the compute pool."""
        want = sv.info.input
        count = (math.prod(tensor.shape) if tensor.shape is not None
                 else len(tensor.data) * math.prod(want.shape[1:]))  # JSON rows
        return await run_small_inline(self.compute, count, INLINE_PIXELS, tensors.model_input,
                                      tensor, want, self.settings)

    def check_inputs(self, sv: ServedVersion, inputs: Sequence[Input]) -> budgets.RequestCost:
        """The budgets of everything a request will decode for ``sv``, together (one
        upload prepared for two versions counts twice)."""
        if not inputs:
            raise InvalidInput("the batch is empty: the request has no inputs")
        return budgets.request_inputs(inputs, sv.info.input, self.settings)

    async def prepared_pixels(self, sv: ServedVersion, pictures: Pictures) -> np.ndarray:
        return stack(await self.prepare(sv, pictures))

    async def prepare(self, sv: ServedVersion, pictures: Pictures) -> list[Prepared]:
        """Encoded pictures -> ``sv``'s input: the budgets from their headers first, then
        decode and preprocess."""
        [pixels] = self.check_inputs(sv, [pictures]).part_pixels
        return await self._decode(sv, pictures, pixels)

    async def _decode(self, sv: ServedVersion, pictures: Pictures,
                      pixels: int) -> list[Prepared]:
        """Pictures of ``pixels`` decoded pixels, within the budgets -> prepared inputs
        (inline when few, else on the compute pool)."""
        spec = self._preprocess_spec(sv, pictures)
        return await run_small_inline(self.compute, pixels, INLINE_PIXELS, preprocess,
                                      pictures.blobs, spec)

    def _preprocess_spec(self, sv: ServedVersion, pictures: Pictures) -> PreprocessSpec:
        """How pictures become ``sv``'s input. MNIST-style centering suits digits, not
        clothing (it fills its frame): on by default for digit models only. A version's
        metadata may say how its uploads are prepared (``upload``: a folder's model takes
        pictures as they are, resized like its training pictures)."""
        info = sv.info
        if info.channels not in (1, 3):
            raise InvalidInput(f"pictures need a 1- or 3-channel model; this one takes "
                               f"{info.channels} channels (send tensors instead)")
        upload = info.metadata.get("upload", {})
        invert = (upload.get("invert", "auto") if pictures.invert == "auto"
                  else pictures.invert)
        center = (upload.get("center", centres_uploads(info.dataset))
                  if pictures.center is None else pictures.center)
        return PreprocessSpec(info.height, info.width, invert, center,
                              self.settings.max_image_pixels, info.channels,
                              upload.get("resize") == "stretch")

    async def predict(self, sv: ServedVersion, images: np.ndarray) -> Outputs:
        """``serving_default``'s outputs for ``images`` through the version's batcher."""
        assert sv.batcher is not None, "a served version always has a batcher"
        timeout = deadline.remaining(self.settings.request_timeout_s)
        if timeout <= 0:
            raise TimedOut(f"the request did not finish within "
                           f"{self.settings.request_timeout_s} s")
        try:
            return await sv.batcher.submit(images, timeout)
        except QueueFull as exc:
            raise Overloaded(f"model {sv.name!r} version {sv.version} is overloaded: "
                             f"{exc}") from None
        except BatcherClosed:
            raise Overloaded(f"model {sv.name!r} version {sv.version} is unloading; "
                             "retry") from None
        except TimeoutError:
            raise TimedOut(f"inference did not finish within {timeout:.3g} s") from None

    async def call_signature(self, sv: ServedVersion, signature: str,
                             **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """A signature other than ``serving_default``, on the inspection pool: bounded and
        admission-controlled apart from the predictions' batcher."""
        if signature not in sv.signatures:
            raise Unprocessable(f"model {sv.name!r} version {sv.version} has no "
                                f"{signature!r} signature (it has "
                                f"{', '.join(sorted(sv.signatures))})")
        return await self.inspection.run(lambda: sv.call_sync(signature, **inputs))

    # ------------------------------------------------------------------ inspection
    def kernels(self, sv: ServedVersion) -> dict[str, np.ndarray]:
        """The learned kernels (cheap: the variables' values, no computation)."""
        inspection.require(sv, "filters", "learned filters")
        return dict(sv.call_sync("filters"))

    async def apply_kernels(self, blob: bytes, kernels: np.ndarray) -> np.ndarray:
        """A first conv layer's kernels ``[kh,kw,C,n]`` over a picture (grayscale for
        C=1, RGB for C=3) -> ``[h,w,n]``."""
        sizes = budgets.picture_sizes([blob], self.settings)
        w, h = sizes[0]
        scale = min(1.0, APPLY_SIDE / max(w, h))
        cost = math.ceil(w * scale) * math.ceil(h * scale) * kernels.size
        if cost > self.settings.max_operation_cost:
            raise TooLarge(f"applying {kernels.shape[-1]} kernels costs {cost}; the "
                           f"limit is {self.settings.max_operation_cost}")
        colour = kernels.shape[2] == 3

        def run() -> np.ndarray:
            img = decode(blob, self.settings.max_image_pixels, color=colour)
            if colour:  # the model reads RGB
                img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            if max(img.shape[:2]) > APPLY_SIDE:  # keep the tile grid a sensible size
                img = fit_longest_side(img, APPLY_SIDE)
            src = img.astype(np.float32).reshape(*img.shape[:2], -1) / 255.0  # as the model
            return np.stack([sum(filter_image(src[:, :, c], kernels[:, :, c, i], "reflect101")
                                 for c in range(kernels.shape[2]))
                             for i in range(kernels.shape[3])], axis=-1)

        return await self.compute.run(run)

    # ------------------------------------------------------------------ image operations
    async def image(self, blob: bytes, color: bool) -> np.ndarray:
        """One uploaded picture decoded for the image operations, within the budgets."""
        budgets.picture_sizes([blob], self.settings)
        return await self.compute.run(
            functools.partial(decode, blob, self.settings.max_image_pixels, color=color))

    async def operate(self, img: np.ndarray, ops: Sequence[Operation]) -> np.ndarray:
        """Image operations in order, after their cost is checked against the budget."""

        def run() -> np.ndarray:
            out = img
            for op in ops:
                out = apply(out, op, self.settings.max_kernel_size)
            return out

        return await self.run_operations(img, ops, run)

    async def run_operations(self, img: np.ndarray, ops: Sequence[Operation],
                             work: Callable[[], T]) -> T:
        """``work`` (``ops`` on ``img``, with whatever result it makes) on the compute pool,
        once the operations' cost fits the budget."""
        h, w = img.shape[:2]
        budgets.operations(ops, w, h, 1 if img.ndim == 2 else img.shape[2], self.settings)
        return await self.compute.run(work)

    async def parse(self, raw: bytes, what: str) -> object:
        """A JSON body (inline when small, else on the compute pool)."""
        return await run_small_inline(self.compute, len(raw), INLINE_BYTES, parse_json, raw,
                                      what)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Other CPU-heavy work of a request (an operation with its own result, encoding a
        big answer), on the compute pool."""
        return await self.compute.run(fn, *args)

    async def encode(self, size: int, fn: Callable[..., T], *args: Any) -> T:
        """Encode an answer of about ``size`` numbers: inline when small, else pooled."""
        return await run_small_inline(self.compute, size, INLINE_BYTES // 8, fn, *args)
