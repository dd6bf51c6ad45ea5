"""What the out-of-distribution verdict costs on the CPU: a version's served graph
(probabilities, OOD score and verdict) against the same graph cut down to its
probabilities, both in ONNX Runtime as the service runs them, at batch 1 and 256, with
one thread and with every CPU; then where the served graph's time goes, by kind of
operator (ONNX Runtime's own profiler, one thread, batch 256).

    python bench/ood_cost.py [--model mnist] [--version N]

A request that asks only for probabilities still pays for the whole graph: the service
runs one graph per version, so every request in a batch gets the verdict.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, batch_rate, onnx_version, onnx_version_arguments, p50_ms
from cnnlab.layout import ONNX_CHECK_FILE, ONNX_FILE
from service.serving.onnx_runner import OnnxRunner

PROBABILITIES = "probabilities"
SERVED = ["in_distribution", "ood_score", PROBABILITIES]


def probabilities_only(model: Path, target: Path) -> Path:
    """``model`` cut to the nodes its probabilities need (ONNX's own extractor)."""
    import onnx.utils

    onnx.utils.extract_model(str(model), str(target), ["image"], [PROBABILITIES])
    return target


def timings(model: Path, outputs: list[str], threads: int,
            pictures: np.ndarray) -> tuple[float, float]:
    """(batch-1 p50 ms, batch-256 images a second) of ``model`` giving ``outputs``."""
    run = OnnxRunner(model, outputs, "uint8", threads)
    one, batch = pictures[:1], np.resize(pictures, (256, *pictures.shape[1:]))
    for _ in range(20):
        run(one)
    b1 = p50_ms(lambda: run(one), 1000)
    run(batch)
    return b1, batch_rate(lambda: run(batch))


def time_by_operator(model: Path, pictures: np.ndarray, workdir: Path,
                     calls: int = 20) -> dict[str, float]:
    """Each kind of operator's share of the kernels' time, one thread, batch 256 (the
    profiler's file is written in ``workdir``)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(workdir / "ort")
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    batch = np.resize(pictures, (256, *pictures.shape[1:]))
    for _ in range(calls):
        session.run(SERVED, {"image": batch})
    events = json.loads(Path(session.end_profiling()).read_text())
    spent: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            spent[event["args"]["op_name"]] += event["dur"]
    total = sum(spent.values())
    return {op: us / total for op, us in spent.most_common()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    onnx_version_arguments(ap)
    args = ap.parse_args()
    name, vdir = onnx_version(args)
    pictures = np.load(vdir / ONNX_CHECK_FILE)  # the version's own check pictures
    results: dict[str, object] = {"model": name, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        cut = probabilities_only(vdir / ONNX_FILE, Path(tmp) / "probabilities.onnx")
        print(f"{name}, ONNX Runtime, {os.cpu_count()} CPUs")
        print("| threads | graph | batch 1 p50 | batch 256 |")
        print("| --- | --- | --- | --- |")
        for threads in (1, 0):
            served = timings(vdir / ONNX_FILE, SERVED, threads, pictures)
            bare = timings(cut, [PROBABILITIES], threads, pictures)
            results[f"threads_{threads or 'all'}"] = {
                "served_b1_ms": served[0], "served_b256_img_s": served[1],
                "probabilities_b1_ms": bare[0], "probabilities_b256_img_s": bare[1]}
            label = threads or f"all ({os.cpu_count()})"
            for name, (b1, b256) in (("served (with the OOD verdict)", served),
                                     ("probabilities only", bare)):
                print(f"| {label} | {name} | {b1:.3f} ms | {b256:,.0f} img/s |")
            print(f"| {label} | served / probabilities only | {served[0] / bare[0]:.2f}x | "
                  f"{served[1] / bare[1]:.2f}x |")
        shares = time_by_operator(vdir / ONNX_FILE, pictures, Path(tmp))
    results["operators"] = shares
    print("\nthe served graph's kernel time by operator (1 thread, batch 256):")
    for op, share in list(shares.items())[:8]:
        print(f"  {op:20s} {share:6.1%}")
    out = ROOT / "bench" / "results" / "ood_cost.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
