"""The strongest peer: NVIDIA Triton Inference Server (its C++ HTTP front end and dynamic
batcher), through PyTriton, serving the same version's ``model.onnx`` with ONNX Runtime in
its Python callback: all three outputs (probabilities, OOD score and verdict), as this
service computes them.

Run with a Python whose libpython is a shared library (Debian's ``python3``) in a venv of
its own holding ``nvidia-pytriton`` and ``onnxruntime`` (``make bench`` makes it):
``python bench/triton_app.py VERSION_DIR HTTP_PORT GRPC_PORT``. It answers the Open
Inference Protocol (V2) on HTTP_PORT with the same request bodies as this service.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

VERSION_DIR, HTTP_PORT, GRPC_PORT = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
INSTANCES = 2  # model instances (callbacks) running batches side by side, one per CPU


def session() -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as ours
    return ort.InferenceSession(str(VERSION_DIR / "model.onnx"), options,
                                providers=["CPUExecutionProvider"])


def instance() -> object:
    runner = session()
    names = [o.name for o in runner.get_outputs()]

    @batch  # type: ignore[untyped-decorator]
    def infer(image: np.ndarray) -> dict[str, np.ndarray]:
        out = runner.run(names, {"image": image})
        # Triton's outputs have a dimension past the batch: a picture's score is [1]
        return {n: a.reshape(len(image), -1) for n, a in zip(names, out, strict=True)}

    return infer


def main() -> None:
    probe = session()
    shape = tuple(int(d) for d in probe.get_inputs()[0].shape[1:])
    k = int(probe.get_outputs()[[o.name for o in probe.get_outputs()].index(
        "probabilities")].shape[1])
    config = TritonConfig(http_port=HTTP_PORT, grpc_port=GRPC_PORT, metrics_port=0,
                          log_verbose=0)
    with Triton(config=config) as triton:
        triton.bind(
            model_name=VERSION_DIR.parent.name,
            infer_func=[instance() for _ in range(INSTANCES)],
            inputs=[Tensor(name="image", dtype=np.uint8, shape=shape)],
            outputs=[Tensor(name="probabilities", dtype=np.float32, shape=(k,)),
                     Tensor(name="ood_score", dtype=np.float32, shape=(1,)),
                     Tensor(name="in_distribution", dtype=np.bool_, shape=(1,))],
            config=ModelConfig(max_batch_size=256, batcher=DynamicBatcher()),
            strict=False,
        )
        triton.serve()


if __name__ == "__main__":
    main()
