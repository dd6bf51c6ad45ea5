"""How many images one ONNX Runtime call should hold: a version's served graph run as the
service runs it (``OnnxRunner``), 256 images at a time in calls of 1 to 256 images, with
one thread (as each of several workers has) and with every CPU. For each: images a second,
and the memory the session keeps after two such calls ran at once (as the service's two
batch threads run them): ONNX Runtime's arena keeps its largest calls' intermediate
tensors for good.

    python bench/onnx_calls.py [--model mnist] [--version N]
    python bench/onnx_calls.py --synthetic 224

``--synthetic SIDE``: instead of a bundled version, a colour CNN of SIDE x SIDE pictures
(three conv layers, random weights), exported as training exports a version. Each
measurement runs in a process of its own, so one's memory is not in another's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, batch_rate, measured_version, onnx_version_arguments
from cnnlab.layout import ONNX_CHECK_FILE, ONNX_FILE
from service.serving.onnx_runner import OnnxRunner

CALL_SIZES = (1, 4, 16, 64, 256)


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(model: Path, threads: int, call_images: int, pictures: np.ndarray,
            seconds: float = 4.0) -> tuple[float, int]:
    """(images a second, bytes the session kept) of ``model`` run ``call_images`` images a
    call over 256 pictures."""
    import onnx

    outputs = [o.name for o in onnx.load(model).graph.output]
    run = OnnxRunner(model, outputs, "uint8", threads, call_images=call_images)
    batch = np.resize(pictures, (256, *pictures.shape[1:]))
    before = resident_bytes()
    with ThreadPoolExecutor(2) as pool:  # two batches at once, as the batch threads
        list(pool.map(lambda _: run(batch), range(2)))
    kept = resident_bytes() - before
    return batch_rate(lambda: run(batch), seconds), kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    onnx_version_arguments(ap, synthetic=True)
    ap.add_argument("--seconds", type=float, default=4.0, help="of each rate")
    args = ap.parse_args()
    with measured_version(args) as (name, vdir):
        measure_all(name, vdir, args.seconds)


def measure_all(name: str, vdir: Path, seconds: float) -> None:
    """Every (threads, images a call) pair of the version in ``vdir``, printed and saved."""
    pictures = np.load(vdir / ONNX_CHECK_FILE)  # the version's own check pictures
    print(f"{name}, ONNX Runtime, {os.cpu_count()} CPUs, 256 images a "
          "batch run as calls of N images")
    print("| threads | images a call | images a second | memory kept (two calls at once) |")
    print("| --- | --- | --- | --- |")
    results: dict[str, object] = {"model": name, "cpus": os.cpu_count()}
    for threads in (1, 0):
        label = threads or f"all ({os.cpu_count()})"
        for size in CALL_SIZES:
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as one:
                rate, kept = one.submit(measure, vdir / ONNX_FILE, threads, size, pictures,
                                        seconds).result()
            results[f"threads_{threads or 'all'}_call_{size}"] = {
                "img_s": rate, "kept_mib": kept / 2**20}
            print(f"| {label} | {size} | {rate:,.0f} | {kept / 2**20:,.0f} MiB |", flush=True)
    out = ROOT / "bench" / "results" / "onnx_calls.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
