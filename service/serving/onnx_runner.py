"""``serving_default`` run by ONNX Runtime, from the ``model.onnx`` training writes beside
the SavedModel (``training.onnx_export``): the CPU runtime of a version's predictions when
the file is there (setting ``runtime``). ONNX Runtime's per-call cost is lower than a
TensorFlow Session's, and its CPU kernels are as fast or faster for these small CNNs
(``docs/performance.md``). The inspection signatures (activations, Grad-CAM, filters)
stay on TensorFlow.

Before it serves, the runner answers the version's check pictures (``onnx_check.npy``)
and its answers are compared with TensorFlow's (``cnnlab.agreement``: probabilities within
1e-5, the same OOD verdicts); a version whose runtimes disagree serves on TensorFlow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cnnlab import agreement
from cnnlab.layout import ONNX_CHECK_FILE, ONNX_FILE
from service.errors import first_line
from service.serving.calls import images_per_call, in_calls

log = logging.getLogger(__name__)

Runner = Callable[[np.ndarray], dict[str, np.ndarray]]


class OnnxRunner:
    """``images -> outputs by name`` through an ONNX Runtime session. ``intra_op_threads``
    as TensorFlow's (0 = ONNX Runtime's choice); one op at a time (the batcher already
    runs batches side by side); a batch of more than ``call_images`` images (by default
    ``images_per_call`` of the model's input) runs as several calls
    (``service.serving.calls``)."""

    frozen = True  # (what the logs say of the TensorFlow runner: constants folded)

    def __init__(self, path: Path, output_names: list[str], dtype: str,
                 intra_op_threads: int = 0, call_images: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle pool threads sleep instead of spinning: the cores are shared with the event
        # loop, the decoding pool and the other workers (docs/performance.md)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        self._session = ort.InferenceSession(str(path), options,
                                             providers=["CPUExecutionProvider"])
        have = [o.name for o in self._session.get_outputs()]
        missing = sorted(set(output_names) - set(have))
        if missing:
            raise ValueError(f"{path.name} has no output(s) {missing} (has {have})")
        self._names = list(output_names)
        self._input = self._session.get_inputs()[0].name
        self._dtype = np.dtype(dtype)
        self.call_images = call_images or images_per_call(
            self._session.get_inputs()[0].shape[1:])

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return in_calls(self._run, images, self.call_images)

    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        arrays = self._session.run(self._names,
                                   {self._input: images.astype(self._dtype, copy=False)})
        return dict(zip(self._names, arrays, strict=True))

    def close(self) -> None:
        del self._session


def disagreement(onnx: Runner, tensorflow: Runner, pictures: np.ndarray) -> str | None:
    """Why the two runtimes' answers on ``pictures`` differ, or None when they agree."""
    return agreement.disagreement(onnx(pictures), tensorflow(pictures))


def onnx_runner(path: Path, output_names: list[str], dtype: str, intra_op_threads: int,
                tensorflow: Runner, call_images: int | None = None
                ) -> tuple[OnnxRunner, np.ndarray] | None:
    """An ``OnnxRunner`` (``call_images`` a call) for the version at ``path`` when it has
    ``model.onnx`` and the runner agrees with ``tensorflow`` on the version's check
    pictures, with those pictures; else None (with a warning when a file is there but
    cannot serve)."""
    model = path / ONNX_FILE
    if not model.is_file():
        return None
    try:
        runner = OnnxRunner(model, output_names, dtype, intra_op_threads, call_images)
        pictures = np.load(path / ONNX_CHECK_FILE, allow_pickle=False)
        why = disagreement(runner, tensorflow, pictures)
    except Exception as exc:  # a missing/corrupt file or an ONNX Runtime error
        log.warning("%s: cannot run %s (%s); predictions run on TensorFlow", path, ONNX_FILE,
                    first_line(exc, 200))
        return None
    if why is not None:
        log.warning("%s: %s disagrees with TensorFlow on its check pictures (%s); "
                    "predictions run on TensorFlow", path, ONNX_FILE, why)
        runner.close()
        return None
    return runner, pictures
