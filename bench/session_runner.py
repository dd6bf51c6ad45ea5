"""The loaded signature vs the same SavedModel in a Session (service.serving.runner), its
graph as it is and frozen (what the service runs). Not a test.

  python bench/session_runner.py [--intra 1] [--batches 1,8,16,32,256] [--seconds 2]

For each batch size, alternating the three ways of calling ``serving_default`` of the bundled
MNIST model: images a second and CPU time an image (this process's user + system time,
so thread-pool overhead counts), and at batch 1 the median latency back to back and after
3 ms idle. ``--intra`` sizes TensorFlow's intra-op pool (1 = what each of two workers gets
on a 2-core machine; 0 = TensorFlow's choice).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import tensorflow as tf

from bench.common import ROOT, p50_ms
from cnnlab.layout import list_versions
from service.serving.runner import SessionRunner

Call = Callable[[np.ndarray], object]


def rate(call: Call, n: int, seconds: float) -> tuple[float, float]:
    """(images a second, CPU µs an image) of ``call`` on ``n`` images back to back."""
    images = np.zeros([n, 28, 28, 1], np.uint8)
    call(images)
    wall0, cpu0, calls = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - wall0 < seconds:
        call(images)
        calls += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return n * calls / wall, 1e6 * cpu / (n * calls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--intra", type=int, default=1)
    ap.add_argument("--batches", default="1,8,16,32,256")
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    if args.intra:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra)
        tf.config.threading.set_inter_op_parallelism_threads(args.intra)
    model_dir = ROOT / "models" / "mnist"
    path = model_dir / str(list_versions(model_dir)[-1])
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    runner = SessionRunner(path, "serving_default", "image", "probabilities", "uint8",
                           args.intra, freeze=False)
    frozen = SessionRunner(path, "serving_default", "image", "probabilities", "uint8",
                           args.intra, freeze=True)
    ways: dict[str, Call] = {
        "signature": lambda x: signature(image=tf.constant(x))["probabilities"].numpy(),
        "session": runner,
        "frozen": frozen,  # what the service runs
    }
    one = np.zeros([1, 28, 28, 1], np.uint8)
    print(f"{path.relative_to(ROOT)}, intra-op threads {args.intra or 'auto'}")
    for name, call in ways.items():
        def call_one(call: Call = call) -> object:
            return call(one)

        print(f"  batch 1 {name:9}: {p50_ms(call_one, 400):.2f} ms back to back, "
              f"{p50_ms(call_one, 300, pause_s=0.003):.2f} ms after 3 ms idle")
    for n in (int(b) for b in args.batches.split(",")):
        for name, call in ways.items():
            per_s, cpu_us = rate(call, n, args.seconds)
            print(f"  batch {n:<4} {name:9}: {per_s:7.0f} img/s, {cpu_us:6.0f} µs CPU an image")


if __name__ == "__main__":
    main()
