"""Which runtime is the faster for a version on this CPU: ONNX Runtime and TensorFlow's
Session, each as the service runs it (``OnnxRunner``, ``SessionRunner``), timed the way
``runtime=auto`` times them at load (``service.serving.choice``: best of several calls,
the two taking turns), for a lone picture and a full call, with one thread (as each of
several workers has) and with every CPU; and which one ``auto`` would serve with.

    python bench/runtimes.py [--model mnist] [--version N] [--rounds 20]
    python bench/runtimes.py --synthetic 224

``--synthetic SIDE``: a colour CNN of SIDE x SIDE pictures (``bench.common.synthetic``).
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import measured_version, onnx_version_arguments
from cnnlab.layout import ONNX_CHECK_FILE, ONNX_FILE
from service.serving import choice
from service.serving.calls import images_per_call
from service.serving.onnx_runner import OnnxRunner
from service.serving.runner import SessionRunner


def compare(vdir: Path, threads: int, rounds: int) -> dict[str, choice.Timing]:
    """Both runtimes' best times for the version in ``vdir`` with ``threads`` (0 = all)."""
    import onnx

    graph = onnx.load(vdir / ONNX_FILE).graph
    outputs = sorted(o.name for o in graph.output)
    # (the export keeps serving_default's input name and type)
    image, dtype = graph.input[0].name, onnx.helper.tensor_dtype_to_np_dtype(
        graph.input[0].type.tensor_type.elem_type).name
    pictures = np.load(vdir / ONNX_CHECK_FILE)
    call_images = images_per_call(pictures.shape[1:])
    onnx_runner = OnnxRunner(vdir / ONNX_FILE, outputs, dtype, threads, call_images)
    session = SessionRunner(vdir, "serving_default", image, outputs, dtype, threads,
                            call_images=call_images)
    try:
        return choice.timed({"onnxruntime": onnx_runner, "tensorflow": session}, pictures,
                            call_images, rounds)
    finally:
        session.close()
        onnx_runner.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    onnx_version_arguments(ap, synthetic=True)
    ap.add_argument("--rounds", type=int, default=20, help="calls of each size timed")
    args = ap.parse_args()
    with measured_version(args) as (name, vdir):
        print(f"{name}, {os.cpu_count()} CPUs, best of {args.rounds} calls each")
        print("| threads | ONNX Runtime | TensorFlow (Session) | auto serves with |")
        print("| --- | --- | --- | --- |")
        for threads in (1, 0):  # each in a process of its own: TensorFlow's thread pool
            # is the process's, sized by its first Session
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as one:
                times = one.submit(compare, vdir, threads, args.rounds).result()
            onnx, tensorflow = times["onnxruntime"], times["tensorflow"]
            serves = ("TensorFlow" if choice.tensorflow_is_faster(onnx, tensorflow)
                      else "ONNX Runtime")
            print(f"| {threads or f'all ({os.cpu_count()})'} | {onnx.describe()} | "
                  f"{tensorflow.describe()} | {serves} |", flush=True)


if __name__ == "__main__":
    main()
