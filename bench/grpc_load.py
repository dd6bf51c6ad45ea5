"""gRPC speed beside REST, one run on this machine. Not a test: prints figures and ratios.

  python bench/grpc_load.py [--seconds 10] [--processes 2]

The service as ``make run`` starts it (a worker per CPU), the bundled MNIST model. Load:
TF Serving's ``PredictionService.Predict`` with raw uint8 tensors from a multi-process
Python client (grpc.aio; ``--processes`` processes sharing the concurrency), single
images at c=64 and 64-image requests at c=8; the REST upload route by wrk in the same run
for comparison. The client runs on the same cores as the server, so the gRPC figures
include its cost; wrk (C) costs far less. Ratios are against the best in-process limit,
the frozen graph in a Session at batch 256 (bench/serving.py's), measured before and
after the service runs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np

from bench.common import ROOT, first_digit, free_port, server, service_env, wrk
from bench.serving import multipart, raw_limit
from cnnlab.layout import list_versions


def _client(port: int, images: np.ndarray, concurrency: int, seconds: float,
            out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One client process: ``concurrency`` Predict calls in flight for ``seconds`` after
    one warm-up call; puts (requests a second, errors) on ``out``."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest(model_spec={"name": "mnist"})
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(images))

    async def run() -> tuple[float, int]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            await stub.Predict(request, timeout=30)
            done, errors = 0, 0
            started = time.perf_counter()
            deadline = started + seconds

            async def loop() -> None:
                nonlocal done, errors
                while time.perf_counter() < deadline:
                    try:
                        await stub.Predict(request, timeout=30)
                        done += 1
                    except grpc.RpcError:
                        errors += 1

            await asyncio.gather(*(loop() for _ in range(concurrency)))
            return done / (time.perf_counter() - started), errors

    out.put(asyncio.run(run()))


def grpc_rate(port: int, images: np.ndarray, concurrency: int, seconds: float,
              processes: int) -> tuple[float, int]:
    """(requests a second, errors) of Predict with ``images`` at ``concurrency``."""
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    share = max(1, concurrency // processes)
    procs = [ctx.Process(target=_client, args=(port, images, share, seconds, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(r[0] for r in results), sum(r[1] for r in results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args()
    model_dir = ROOT / "models" / "mnist"
    vdir = model_dir / str(list_versions(model_dir)[-1])
    digit = first_digit()
    gray = cv2.imdecode(np.frombuffer(digit, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert gray is not None, "the fixture digit does not decode"
    one, many = gray[None, :, :, None], np.repeat(gray[None, :, :, None], 64, axis=0)
    before = raw_limit(vdir, gray[..., None])["frozen_b256_img_s"]
    port, grpc_port = free_port(), free_port()
    env = service_env(port, CNNLAB_GRPC_PORT=str(grpc_port))
    with server([sys.executable, "-m", "service"], port, "/health/ready", env=env) as (url, _):
        time.sleep(2)
        single, single_err = grpc_rate(grpc_port, one, 64, args.seconds, args.processes)
        batched, batched_err = grpc_rate(grpc_port, many, 8, args.seconds, args.processes)
        body, ctype = multipart([digit] * 64)
        rest_single = wrk(f"{url}/api/models/mnist/predict", digit, "image/png", 64,
                          int(args.seconds), threads=2)
        rest_batched = wrk(f"{url}/api/models/mnist/predict", body, ctype, 8,
                           int(args.seconds), threads=2)
    after = raw_limit(vdir, gray[..., None])["frozen_b256_img_s"]
    limit = (before + after) / 2
    print(f"frozen graph batch 256: {before:.0f} / {after:.0f} img/s (before / after)")
    rows = [("gRPC Predict, single image, c=64", single, single_err),
            ("gRPC Predict, 64 images a request, c=8", 64 * batched, batched_err),
            ("REST upload, single image, c=64 (wrk)", rest_single.requests_per_s,
             rest_single.errors),
            ("REST upload, 64 images a request, c=8 (wrk)", 64 * rest_batched.requests_per_s,
             rest_batched.errors)]
    for what, rate, errors in rows:
        print(f"  {what:<46} {rate:7.0f} img/s  {rate / limit:5.2f}x the limit  "
              f"errors {errors}")


if __name__ == "__main__":
    main()
