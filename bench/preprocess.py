"""Preprocessing speed: pictures one by one vs together. Not a test: prints figures.

  python bench/preprocess.py [--repeat 200]

The shipped test digits (28x28 PNGs), decoded once, then prepared for the 28x28 digit
model with the defaults (inversion auto, MNIST centering): ``imaging.prepare`` on each
picture vs ``imaging.prepare_batch`` on groups of n, best of five rounds, in µs a picture.
The batch worker prepares the small uploads of all requests in a batch together.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np

from bench.common import ROOT
from service.imaging import decode, prepare, prepare_batch


def per_picture_us(fn: Callable[[], object], pictures: int, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - started) / repeat / pictures)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    cv2.setNumThreads(1)  # as the service runs it (CNNLAB_OPENCV_THREADS)
    digits = sorted((ROOT / "tests" / "fixtures" / "digits").glob("*.png"))
    grays = [decode(p.read_bytes(), 10**6) for p in digits] * 7
    print("n    one by one   together  (µs a picture)")
    for n in (1, 4, 8, 16, 32, 64):
        group = grays[:n]

        def one_by_one(g: list[np.ndarray] = group) -> object:
            return [prepare(x, 28, 28, center=True) for x in g]

        def together(g: list[np.ndarray] = group) -> object:
            return prepare_batch(g, 28, 28, center=True)

        alone_us = per_picture_us(one_by_one, n, args.repeat)
        together_us = per_picture_us(together, n, args.repeat)
        print(f"{n:<4} {alone_us:10.1f} {together_us:10.1f}   x{alone_us / together_us:.2f}",
              flush=True)

if __name__ == "__main__":
    main()
