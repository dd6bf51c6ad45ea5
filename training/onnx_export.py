"""``serving_default`` as ONNX: ``model.onnx`` beside the SavedModel in a version's
directory, for the service to run predictions with ONNX Runtime on the CPU
(``service.serving.onnx_runner``).

The graph converted is the one the service's TensorFlow path runs: the SavedModel's
``serving_default`` with its variables frozen into constants (TF Serving's loader, then
``convert_variables_to_constants``), by tf2onnx at opset ``OPSET``; its outputs keep the
signature's names (``probabilities``, ``ood_score``, ``in_distribution``). The file is kept
only when ONNX Runtime's answers on the version's check pictures (``onnx_check.npy``,
written beside it; the service checks them again when it loads the version) agree with
TensorFlow's: probabilities within ``cnnlab.agreement.ATOL``, the same OOD verdicts.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from cnnlab import agreement
from cnnlab.layout import ONNX_CHECK_FILE, ONNX_FILE

log = logging.getLogger(__name__)

OPSET = 17
CHECK_PICTURES = 32  # pictures of the version kept to check the runtimes agree
tf1 = tf.compat.v1


class OnnxError(Exception):
    """The version's graph could not be converted, or the converted one disagrees."""


def frozen_signature(version_dir: Path) -> tuple[Any, str, dict[str, str]]:
    """``serving_default``'s graph with its variables as constants, the input tensor's
    name and the output tensors' names by output name."""
    graph = tf.Graph()
    with tf1.Session(graph=graph) as session:
        meta = tf1.saved_model.loader.load(session, [tf.saved_model.SERVING],
                                           str(version_dir))
        sig = meta.signature_def["serving_default"]
        [feed] = [t.name for t in sig.inputs.values()]
        fetches = {name: t.name for name, t in sig.outputs.items()}
        frozen = tf1.graph_util.convert_variables_to_constants(
            session, graph.as_graph_def(), sorted({f.split(":")[0] for f in fetches.values()}))
    return frozen, feed, fetches


def convert(version_dir: Path) -> Any:
    """The version's ``serving_default`` as an ONNX model whose outputs are named as the
    signature's."""
    import onnx
    import tf2onnx

    graph_def, feed, fetches = frozen_signature(version_dir)
    names = sorted(fetches)
    try:
        model, _ = tf2onnx.convert.from_graph_def(
            graph_def, input_names=[feed], output_names=[fetches[n] for n in names],
            opset=OPSET)
    except Exception as exc:  # tf2onnx raises many kinds for an op it cannot convert
        raise OnnxError(f"tf2onnx cannot convert serving_default: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                        ) from None
    graph = model.graph
    graph.input[0].name = _rename(graph, graph.input[0].name, "image")
    for out, name in zip(list(graph.output), names, strict=True):
        graph.node.append(onnx.helper.make_node("Identity", [out.name], [name]))
        out.name = name
    onnx.checker.check_model(model)
    return model


def _rename(graph: Any, old: str, new: str) -> str:
    """Rename the graph's input ``old`` to ``new`` wherever a node reads it."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
    return new


def agree(version_dir: Path, model_bytes: bytes, pictures: np.ndarray) -> dict[str, float]:
    """How far ONNX Runtime's answers are from TensorFlow's on ``pictures``; raises
    ``OnnxError`` when they disagree (``cnnlab.agreement``)."""
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()],
                   session.run(None, {"image": pictures}), strict=True))
    served = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    want = {k: v.numpy() for k, v in served(image=tf.constant(pictures)).items()}
    why = agreement.disagreement(got, want)
    if why is not None:
        raise OnnxError(f"ONNX Runtime and TensorFlow disagree: {why}")
    return {"max_probability_gap": agreement.probability_gap(got, want),
            "pictures": len(pictures), "verdicts_identical": "in_distribution" in want}


def write(version_dir: Path, pictures: np.ndarray) -> dict[str, Any]:
    """Convert ``version_dir``'s ``serving_default`` to ``model.onnx`` and keep its check
    ``pictures`` (at most ``CHECK_PICTURES``) beside it; the metadata's ``onnx`` entry.
    When it cannot be converted or disagrees, nothing is written and the entry says why
    (the version serves on TensorFlow)."""
    check = np.ascontiguousarray(pictures[:CHECK_PICTURES], dtype=np.uint8)
    try:
        model = convert(version_dir)
        data = model.SerializeToString()
        agreed = agree(version_dir, data, check)
    except OnnxError as exc:
        log.warning("%s: no %s (%s); the version serves on TensorFlow", version_dir,
                    ONNX_FILE, exc)
        return {"onnx": {"error": str(exc)}}
    buffer = io.BytesIO()
    np.save(buffer, check)
    # each file whole or not at all: a service may be loading the version meanwhile
    for name, content in ((ONNX_CHECK_FILE, buffer.getvalue()), (ONNX_FILE, data)):
        staged = version_dir / f".{name}.tmp"
        staged.write_bytes(content)
        staged.replace(version_dir / name)
    return {"onnx": {"file": ONNX_FILE, "opset": OPSET, "check_file": ONNX_CHECK_FILE,
                     **agreed}}
