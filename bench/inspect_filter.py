"""Filtering and activations speed (issue 4). Not a test: prints figures and ratios.

  python bench/inspect_filter.py [--repeat 40]

1. A 1024x1024 RGB PNG through the Sobel kernel: the service's round trip (upload,
   decode, filter2D, encode, download) vs the same decode + filter2D + encode in-process.
   Goal: round trip <= 1.3 x in-process.
2. Activations of every layer for one MNIST digit (.npz, 16 arrays, 0.66 MB): the service's
   round trip vs the raw ``activations`` signature call. Goal: p50 <= 3 x. The round trip
   is timed twice: by wrk (C, one connection) and by httpx (Python, whose own parsing of
   the 0.66 MB answer is part of its figure).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import httpx
import numpy as np
import tensorflow as tf

from bench.common import ROOT, free_port, p50_ms, server, wrk
from cnnlab.layout import list_versions
from service.images import kernels
from service.images.decode import decode


def photo_like(size: int = 1024) -> bytes:
    """A smooth colour picture with edges (PNG compresses it like a real photo)."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
    img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    cv2.circle(img, (size // 2, size // 2), size // 4, (255, 255, 255), 12)
    return cv2.imencode(".png", img)[1].tobytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=40)
    args = ap.parse_args()
    picture = photo_like()
    sobel = kernels.NAMED["sobel_right"]

    def in_process(color: bool) -> Callable[[], bytes]:
        def run() -> bytes:
            img = decode(picture, 25_000_000, color=color)
            out = kernels.to_uint8(kernels.filter_image(img, sobel, "reflect101"), "clip")
            return cv2.imencode(".png", out)[1].tobytes()
        return run

    version = list_versions(ROOT / "models" / "mnist")[-1]
    sig = tf.saved_model.load(str(ROOT / "models" / "mnist" / str(version))
                              ).signatures["activations"]
    digit_png = (ROOT / "tests" / "fixtures" / "digits" / "7_test0.png").read_bytes()
    gray = cv2.imdecode(np.frombuffer(digit_png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert gray is not None, "the fixture digit does not decode"
    digit = gray[None, ..., None]

    def raw_activations() -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in sig(image=tf.constant(digit)).items()}

    local = {c: p50_ms(in_process(c == "rgb"), args.repeat) for c in ("gray", "rgb")}
    raw_act = p50_ms(raw_activations, args.repeat * 5)

    port = free_port()
    env = {"CNNLAB_PORT": str(port), "CNNLAB_POLL_INTERVAL_S": "0",
           "CNNLAB_LOG_LEVEL": "warning"}
    with server([sys.executable, "-m", "service"], port, "/health/ready", env=env) as (url, _), \
            httpx.Client(base_url=url, timeout=60) as c:
        remote = {col: p50_ms(lambda col=col: c.post(  # type: ignore[misc]
            f"/api/filter?kernel=sobel_right&color={col}", content=picture,
            headers={"content-type": "image/png"}).raise_for_status(), args.repeat)
            for col in ("gray", "rgb")}
        act_url = "/api/models/mnist/activations?format=npz"
        act = p50_ms(lambda: c.post(act_url, content=digit_png,
                                    headers={"content-type": "image/png"}).raise_for_status(),
                     args.repeat * 5)
        act_wrk = wrk(url + act_url, digit_png, "image/png", 1, 10)
    print(f"1024x1024 RGB PNG ({len(picture) / 1e6:.1f} MB), Sobel, p50 of {args.repeat}:")
    for col in ("gray", "rgb"):
        print(f"  color={col}: in-process {local[col]:.1f} ms, service round trip "
              f"{remote[col]:.1f} ms, ratio {remote[col] / local[col]:.2f} (goal <= 1.3)")
    print(f"all-layer activations of one digit (mnist v{version}), p50 of {args.repeat * 5}:")
    print(f"  raw signature {raw_act:.2f} ms; service .npz round trip: wrk {act_wrk.p50_ms:.2f} "
          f"ms, ratio {act_wrk.p50_ms / raw_act:.2f} (goal <= 3); httpx {act:.2f} ms, ratio "
          f"{act / raw_act:.2f}; errors {act_wrk.errors}")


if __name__ == "__main__":
    main()
