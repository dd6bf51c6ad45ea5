"""Serving speed, one run on this machine. Not a test: prints figures and ratios.

  python bench/serving.py [--models-dir models] [--model mnist] [--version N] [--seconds 10]

1. in-process limits: the loaded ``serving_default`` signature in a loop at batch 1 and
   batch 256 ("raw"), the frozen graph in a Session (TensorFlow's best, service.serving.
   runner) and ONNX Runtime over the version's model.onnx (service.serving.onnx_runner),
   at batch 1 and 256; the fastest runtime's figures are the limits the service is held
   to. Measured at the start and again
   between every two measurements of this service; each ratio uses the mean of the two
   limits measured right before and right after its measurement (a shared machine's speed
   drifts within minutes)
2. naive baseline: FastAPI + ``model.predict`` per request (bench/naive_app.py)
3. peers: LitServe with its own batching over the same SavedModel (bench/litserve_app.py),
   and Triton through PyTriton over the version's model.onnx (bench/triton_app.py, in
   its own venv: --triton-python), on the Open Inference Protocol's JSON bodies
4. this service: single-image uploads at concurrency 1 and 64, and 64-image requests,
   as ``make run`` starts it (CNNLAB_WORKERS=auto: one worker process per CPU, 2 on this
   machine) and 4b. as one process (CNNLAB_WORKERS=1)

Servers 2-4 get the same request (TF-Serving-style JSON with one base64 PNG) from wrk at
concurrency 64; ours is also measured on its raw-PNG upload route.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import operator
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np
import tensorflow as tf

from bench.common import (
    ROOT,
    WrkResult,
    batch_rate,
    first_digit,
    free_port,
    p50_ms,
    server,
    side_by_side_rate,
    wrk,
)
from bench.plot import serving_figure
from cnnlab.layout import ONNX_FILE, list_versions
from service.runtime.settings import auto_workers
from service.serving.onnx_runner import OnnxRunner
from service.serving.runner import SessionRunner


@functools.cache
def _load(model_dir: Path) -> Any:
    """The SavedModel, loaded once for every raw measurement (kept alive by the cache)."""
    return tf.saved_model.load(str(model_dir))


@functools.cache
def _session(model_dir: Path) -> SessionRunner:
    """Every output of ``serving_default`` in a frozen Session, as the service runs it."""
    outputs = _load(model_dir).signatures["serving_default"].structured_outputs
    return SessionRunner(model_dir, "serving_default", "image", sorted(outputs), "uint8",
                         freeze=True)


@functools.cache
def _onnx(model_dir: Path, threads: int = 0, instance: int = 0) -> OnnxRunner | None:
    """Every output of ``serving_default`` with ONNX Runtime (when the version has its
    ``model.onnx``), as the service runs it on the CPU: ``threads`` inside an op (0 =
    ONNX Runtime's choice, as one worker has; each of two workers on two CPUs has one).
    Each ``instance`` is a session of its own (one per worker)."""
    if not (model_dir / ONNX_FILE).is_file():
        return None
    outputs = _load(model_dir).signatures["serving_default"].structured_outputs
    return OnnxRunner(model_dir / ONNX_FILE, sorted(outputs), "uint8", threads)


def raw_limit(model_dir: Path, image: np.ndarray) -> dict[str, float]:
    fn = _load(model_dir).signatures["serving_default"]
    one = tf.constant(image[None])
    many = tf.constant(np.repeat(image[None], 256, axis=0))
    for _ in range(20):
        fn(image=one)
    fn(image=many)
    def call_one() -> object:
        return fn(image=one)["probabilities"].numpy()

    b1_ms = p50_ms(call_one, 500)
    # a served request never finds TF hot: its threads sleep between calls
    b1_idle_ms = p50_ms(call_one, 300, pause_s=0.003)
    b256 = batch_rate(lambda: fn(image=many)["probabilities"].numpy())
    session = _session(model_dir)
    batch = np.repeat(image[None], 256, axis=0)
    session(batch)
    b256_frozen = batch_rate(lambda: session(batch))
    b1_session_ms = p50_ms(lambda: session(image[None]), 500)
    limits = {"b1_ms": b1_ms, "b1_img_s": 1000 / b1_ms, "b256_img_s": b256,
              "frozen_b256_img_s": b256_frozen, "b1_after_3ms_idle_ms": b1_idle_ms,
              "b1_session_ms": b1_session_ms}
    onnx, onnx_one = _onnx(model_dir), _onnx(model_dir, 1)
    if onnx is not None and onnx_one is not None:
        onnx(batch)
        limits["onnx_b256_img_s"] = batch_rate(lambda: onnx(batch))
        limits["onnx_b1_ms"] = p50_ms(lambda: onnx(image[None]), 500)
        onnx_one(image[None])
        limits["onnx_one_thread_b1_ms"] = p50_ms(lambda: onnx_one(image[None]), 500)
        # a lone request's model call follows an idle gap (the client's round trip), and
        # the service makes it on an inference thread, not the thread that waits for it
        limits["onnx_one_thread_b1_after_idle_ms"] = p50_ms(
            lambda: onnx_one(image[None]), 300, pause_s=0.003)
        with ThreadPoolExecutor(1) as pool:
            limits["onnx_one_thread_b1_handed_off_after_idle_ms"] = p50_ms(
                lambda: pool.submit(onnx_one, image[None]).result(), 300, pause_s=0.003)
        # as make run's workers run it: a one-thread session each, side by side
        sessions = [onnx_one, *(_onnx(model_dir, 1, i) for i in range(1, auto_workers()))]
        limits["onnx_side_by_side_b256_img_s"] = side_by_side_rate(
            [functools.partial(s, batch) for s in sessions if s is not None])
    # the fastest runtime's limits, in its fastest setting: what the service could reach
    limits["best_b256_img_s"] = max(b256_frozen, limits.get("onnx_b256_img_s", 0.0),
                                    limits.get("onnx_side_by_side_b256_img_s", 0.0))
    limits["best_b1_ms"] = min(b1_session_ms, limits.get("onnx_b1_ms", float("inf")),
                               limits.get("onnx_one_thread_b1_ms", float("inf")))
    return limits


def multipart(files: list[bytes]) -> tuple[bytes, str]:
    boundary = "cnnlabbenchboundary"
    parts = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
              f"filename=\"{i}.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + f + b"\r\n"
             for i, f in enumerate(files)]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), \
        f"multipart/form-data; boundary={boundary}"


Limits = tuple[dict[str, float], dict[str, float]]  # raw limit right before / after
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le}


def v2_body(pixels: np.ndarray) -> bytes:
    """An Open Inference Protocol JSON request of ``pixels`` ``[N,H,W,C]`` as numbers."""
    return json.dumps({"inputs": [{"name": "image", "shape": list(pixels.shape),
                                   "datatype": "UINT8",
                                   "data": pixels.ravel().tolist()}]}).encode()


def measure_ours(model: str, env: dict[str, str], digit: bytes, tfs_body: bytes,
                 multi: bytes, multi_type: str, v2: tuple[bytes, bytes], seconds: int,
                 raw: Callable[[], dict[str, float]], before: dict[str, float]
                 ) -> tuple[dict[str, WrkResult], dict[str, Limits], dict[str, float]]:
    """This service (started with ``env``): single uploads at c=1 and c=64, the peers'
    JSON body at c=64, 64-image multipart requests at c=8, the V2 JSON face (one
    picture as numbers at c=1, 64 pictures a request at c=8), and an empty request
    (``/health/live``) at c=1, the HTTP stack's own time; each measurement with the raw
    limit measured right before and right after it (``before``: the first one). And the
    service's own account of the lone V2 requests (``served_time``)."""
    port = free_port()
    runs: dict[str, WrkResult] = {}
    around: dict[str, Limits] = {}
    inside: dict[str, float] = {}
    with server([sys.executable, "-m", "service"], port, "/health/ready",
                env={**env, "CNNLAB_PORT": str(port)}) as (url, _):
        upload = f"{url}/api/models/{model}/predict"
        plan = {
            "c1": (upload, digit, "image/png", 1),
            "c64": (upload, digit, "image/png", 64),
            "tfs_c64": (f"{url}/v1/models/{model}:predict", tfs_body, "application/json", 64),
            "batched": (upload, multi, multi_type, 8),
            "v2_c1": (f"{url}/v2/models/{model}/infer", v2[0], "application/json", 1),
            "v2_c64": (f"{url}/v2/models/{model}/infer", v2[0], "application/json", 64),
            "v2_batched": (f"{url}/v2/models/{model}/infer", v2[1], "application/json", 8),
            "empty_c1": (f"{url}/health/live", None, "", 1),
        }
        target: str
        body: bytes | None
        for key, (target, body, ctype, connections) in plan.items():
            start = served_time(url, model) if key == "v2_c1" else None
            runs[key] = wrk(target, body, ctype, connections, seconds,
                            threads=1 if connections == 1 else 2)
            if start is not None:
                inside = served_time(url, model, since=start)
            after = raw()
            around[key] = (before, after)
            before = after
    return runs, around, inside


def served_time(url: str, model: str, since: dict[str, float] | None = None
                ) -> dict[str, float]:
    """The service's statistics of ``model`` (every version, every worker: the V2
    statistics extension): batches, requests, and the seconds requests waited in the
    queue and batches took in the model call (from handing the batch to the inference
    thread until its outputs are back on the event loop). With ``since`` (an earlier
    reading): the mean queue wait per request and model call per batch since then, in ms."""
    rows = httpx.get(f"{url}/v2/models/{model}/stats", timeout=30).json()["model_stats"]
    stats = {"batches": 0.0, "requests": 0.0, "queue_s": 0.0, "compute_s": 0.0}
    for row in rows:
        timing = row["inference_stats"]
        stats["batches"] += timing["compute_infer"]["count"]
        stats["requests"] += timing["queue"]["count"]
        stats["queue_s"] += timing["queue"]["ns"] / 1e9
        stats["compute_s"] += timing["compute_infer"]["ns"] / 1e9
    if since is None:
        return stats
    batches, requests = (stats[k] - since[k] for k in ("batches", "requests"))
    return {"queue_ms": 1000 * (stats["queue_s"] - since["queue_s"]) / max(requests, 1),
            "model_ms": 1000 * (stats["compute_s"] - since["compute_s"]) / max(batches, 1)}


def measure_capture(model: str, env: dict[str, str], digit: bytes, seconds: int
                    ) -> tuple[WrkResult, dict[str, float]]:
    """Single uploads at c=64 with every request captured (``CNNLAB_CAPTURE_RATE=1``) into
    a fresh SQLite store; and the capture counters from ``/metrics`` (stored, dropped)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-captures-") as store, \
            server([sys.executable, "-m", "service"], port, "/health/ready",
                   env={**env, "CNNLAB_PORT": str(port), "CNNLAB_CAPTURE_RATE": "1",
                        "CNNLAB_CAPTURE_DIR": store}) as (url, _):
        result = wrk(f"{url}/api/models/{model}/predict", digit, "image/png", 64, seconds,
                     threads=2)
        time.sleep(1)  # the writers' last gathered batch
        counters = {line.split()[0]: float(line.split()[1])
                    for line in httpx.get(f"{url}/metrics").text.splitlines()
                    if line.startswith("cnnlab_captures")}
    return result, counters


def measure_triton(python: Path, vdir: Path, model: str, v2: tuple[bytes, bytes],
                   seconds: int) -> dict[str, WrkResult]:
    """Triton (``bench/triton_app.py`` in its own venv's ``python``) on the V2 JSON bodies
    this service gets: one picture at c=1 and c=64, 64 pictures a request at c=8. PyTriton
    sometimes fails to load the model (its Python backend's handshake socket refuses the
    connection): it is started once more then."""
    for attempt in (1, 2):
        port, grpc_port = free_port(), free_port()
        try:
            with server([str(python), "bench/triton_app.py", str(vdir), str(port),
                         str(grpc_port)], port,
                        f"/v2/models/{model}/ready") as (url, _):  # (the model, not the server)
                target = f"{url}/v2/models/{model}/infer"
                return {
                    "v2_c1": wrk(target, v2[0], "application/json", 1, seconds, threads=1),
                    "v2_c64": wrk(target, v2[0], "application/json", 64, seconds, threads=2),
                    "v2_batched": wrk(target, v2[1], "application/json", 8, seconds,
                                      threads=2)}
        except RuntimeError as exc:  # (server(): the process exited before it was ready)
            if attempt == 2:
                raise
            print(f"   Triton did not start ({exc}); starting it again", flush=True)
    raise AssertionError("unreachable")


def lone_request_budget(runs: dict[str, WrkResult], around: Limits,
                        inside: dict[str, float]) -> dict[str, float]:
    """How a lone V2 request's time divides against its goal (p50 <= 1.5x the fastest
    runtime's batch 1, called back to back): the HTTP stack's own time (an empty request's
    p50); the queue wait and the model call as the service timed them (``served_time``:
    means); and what is left of the p50 for the service's own steps (reading and parsing
    the body, checking it, batching and encoding the answer)."""
    goal = 1.5 * mean_limit(around, "best_b1_ms")
    http, queue, model = runs["empty_c1"].p50_ms, inside["queue_ms"], inside["model_ms"]
    return {"goal_ms": goal, "http_ms": http, "queue_ms": queue, "model_ms": model,
            "left_ms": goal - http - queue - model,
            "taken_ms": runs["v2_c1"].p50_ms - http - queue - model}


def mean_limit(limits: Limits, key: str) -> float:
    return (limits[0][key] + limits[1][key]) / 2


FIGURE = ROOT / "docs" / "img" / "performance.png"  # the site's performance page shows it


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--model", default="mnist")
    ap.add_argument("--version", type=int,
                    help="the version every server loads (default: the newest)")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--triton-python", type=Path, default=ROOT / ".venv-triton" / "bin" / "python",
                    help="a Python with nvidia-pytriton and onnxruntime (make bench makes "
                         "it); without it Triton is not measured")
    args = ap.parse_args()
    version = args.version or list_versions(args.models_dir / args.model)[-1]
    vdir = (args.models_dir / args.model / str(version)).resolve()
    digit = first_digit()
    import cv2

    gray = cv2.imdecode(np.frombuffer(digit, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert gray is not None, "the fixture digit does not decode"
    pixels = gray[..., None]
    tfs_body = json.dumps({"instances": [{"b64": base64.b64encode(digit).decode()}]}).encode()
    s = args.seconds
    py = sys.executable
    results: dict[str, object] = {"model": f"{args.model}/{version}", "cpus": os.cpu_count()}

    print(f"model {args.model} version {version}; {os.cpu_count()} CPUs; wrk {s} s per run",
          flush=True)
    raw = raw_limit(vdir, pixels)
    results["raw"] = raw
    print(f"1. raw serving_default: batch 1 {raw['b1_ms']:.2f} ms ({raw['b1_img_s']:.0f} img/s)"
          f" back to back, {raw['b1_after_3ms_idle_ms']:.2f} ms after 3 ms idle; batch 256 "
          f"{raw['b256_img_s']:.0f} img/s. Frozen graph in a Session (what the service runs): "
          f"batch 256 {raw['frozen_b256_img_s']:.0f} img/s, batch 1 "
          f"{raw['b1_session_ms']:.2f} ms" + (
              f". ONNX Runtime: batch 256 {raw['onnx_b256_img_s']:.0f} img/s, batch 1 "
              f"{raw['onnx_b1_ms']:.2f} ms ({raw['onnx_one_thread_b1_ms']:.2f} ms on one "
              f"thread); {auto_workers()} one-thread sessions side by side, batch 256 "
              f"{raw['onnx_side_by_side_b256_img_s']:.0f} img/s"
              if "onnx_b1_ms" in raw else ""), flush=True)

    port = free_port()
    with server([py, "bench/naive_app.py", str(vdir), str(port)], port, "/docs") as (url, _):
        naive = wrk(url + "/predict", tfs_body, "application/json", 64, s, threads=2)
    results["naive_c64"] = vars(naive)
    print(f"2. naive model.predict: c=64 {naive.requests_per_s:.0f} img/s, "
          f"p50 {naive.p50_ms:.1f} ms, errors {naive.errors}", flush=True)

    port = free_port()
    with server([py, "bench/litserve_app.py", str(vdir), str(port)], port, "/health") as (url, _):
        lit = wrk(url + "/predict", tfs_body, "application/json", 64, s, threads=2)
    results["litserve_c64"] = vars(lit)
    print(f"3. LitServe (batch 64): c=64 {lit.requests_per_s:.0f} img/s, "
          f"p50 {lit.p50_ms:.1f} ms, errors {lit.errors}", flush=True)

    v2 = (v2_body(pixels[None]), v2_body(np.repeat(pixels[None], 64, axis=0)))
    triton: dict[str, WrkResult] = {}
    if args.triton_python.is_file() and (vdir / ONNX_FILE).is_file():
        triton = measure_triton(args.triton_python, vdir, args.model, v2, s)
        results["triton"] = {k: vars(v) for k, v in triton.items()}
        print(f"3b. Triton (PyTriton, ONNX Runtime, dynamic batching), V2 JSON: c=1 p50 "
              f"{triton['v2_c1'].p50_ms:.2f} ms; c=64 {triton['v2_c64'].requests_per_s:.0f} "
              f"req/s; 64 images/request at c=8 "
              f"{64 * triton['v2_batched'].requests_per_s:.0f} img/s; errors "
              f"{sum(r.errors for r in triton.values())}", flush=True)
    else:
        print(f"3b. Triton not measured: no {args.triton_python} (make bench makes it) or no "
              f"{ONNX_FILE} in {vdir}", flush=True)

    env = {"CNNLAB_MODELS_DIR": str(args.models_dir.resolve()),
           "CNNLAB_POLL_INTERVAL_S": "0", "CNNLAB_LOG_LEVEL": "warning",
           "CNNLAB_MODEL_POLICIES": json.dumps({args.model: f"specific:{version}"})}
    multi, ctype = multipart([digit] * 64)
    ours: dict[str, dict[str, WrkResult]] = {}
    limits: dict[str, dict[str, Limits]] = {}
    before = raw_limit(vdir, pixels)
    around_triton = (raw, before)  # (Triton ran between the two)
    default = f"make run's default, {auto_workers()} worker(s)"
    for name, settings in ((default, {}), ("one process", {"CNNLAB_WORKERS": "1"})):
        runs, around, inside = measure_ours(
            args.model, {**env, **settings}, digit, tfs_body, multi, ctype, v2,
            s, lambda: raw_limit(vdir, pixels), before)
        ours[name], limits[name] = runs, around
        before = around["v2_batched"][1]
        results[f"ours, {name}"] = {k: vars(v) for k, v in runs.items()}
        results[f"raw around ours, {name}"] = {k: list(v) for k, v in around.items()}
        c1, c64, tfs, batched = runs["c1"], runs["c64"], runs["tfs_c64"], runs["batched"]
        b256 = " / ".join(f"{around[k][0]['frozen_b256_img_s']:.0f}" for k in around) + \
            f" / {before['frozen_b256_img_s']:.0f}"
        print(f"4{'' if name == default else 'b'}. this service, {name}, upload "
              f"route: c=1 p50 {c1.p50_ms:.2f} ms p99 {c1.p99_ms:.2f} ms; c=64 "
              f"{c64.requests_per_s:.0f} img/s (p50 {c64.p50_ms:.1f} ms); 64 images/request "
              f"at c=8 {64 * batched.requests_per_s:.0f} img/s; TF-Serving JSON+b64 c=64 "
              f"{tfs.requests_per_s:.0f} img/s; V2 JSON c=1 p50 {runs['v2_c1'].p50_ms:.2f} "
              f"ms, c=64 {runs['v2_c64'].requests_per_s:.0f} img/s, 64 images/request at "
              f"c=8 {64 * runs['v2_batched'].requests_per_s:.0f} img/s; errors "
              f"{sum(r.errors for r in runs.values())}\n   frozen graph batch 256 around these "
              f"runs: {b256} img/s", flush=True)
        if triton and "onnx_side_by_side_b256_img_s" in before:
            # the 64-image rates against the runtime's own, as both run it (a one-thread
            # session per worker or model instance, side by side)
            key = "onnx_side_by_side_b256_img_s"
            share = {"ours": 64 * runs["v2_batched"].requests_per_s
                     / mean_limit(around["v2_batched"], key),
                     "triton": 64 * triton["v2_batched"].requests_per_s
                     / mean_limit(around_triton, key)}
            results[f"64 images against sessions side by side, {name}"] = share
            print(f"   64 images a request, against ONNX Runtime's one-thread sessions side "
                  f"by side at batch 256: this service {share['ours']:.2f}, Triton "
                  f"{share['triton']:.2f}", flush=True)
        budget = lone_request_budget(runs, around["v2_c1"], inside)
        results[f"lone request budget, {name}"] = budget
        print(f"   a lone V2 request: its goal, 1.5x the fastest runtime's batch 1, is "
              f"{budget['goal_ms']:.2f} ms; the HTTP stack alone (an empty request) takes "
              f"{budget['http_ms']:.2f} ms, and by the service's statistics it waited "
              f"{budget['queue_ms']:.3f} ms in the queue and its model call (with the hand-off "
              f"to the inference thread and back) took {budget['model_ms']:.2f} ms, leaving "
              f"{budget['left_ms']:.2f} ms for reading, checking, batching and answering; "
              f"this service took {budget['taken_ms']:.2f} ms for them", flush=True)

    captured, counters = measure_capture(args.model, env, digit, s)
    results["capture_c64"] = {**vars(captured), **counters}
    print(f"5. this service, {default}, every upload captured: c=64 "
          f"{captured.requests_per_s:.0f} img/s (p50 {captured.p50_ms:.1f} ms), errors "
          f"{captured.errors}; pictures stored "
          f"{counters.get('cnnlab_captures_total', 0):.0f}, dropped "
          f"{counters.get('cnnlab_captures_dropped_total', 0):.0f}", flush=True)

    ratios: dict[str, float] = {}
    met: dict[str, bool] = {}
    for name, runs in ours.items():
        around = limits[name]
        single, many = runs["c64"].requests_per_s, 64 * runs["batched"].requests_per_s
        goals: list[tuple[str, str, float, float]] = [
            ("c64 single / frozen b256", ">=", 0.5,
             single / mean_limit(around["c64"], "frozen_b256_img_s")),
            ("batched / frozen b256", ">=", 0.9,
             many / mean_limit(around["batched"], "frozen_b256_img_s")),
            ("c64 single / raw b256", ">=", 0.5,
             single / mean_limit(around["c64"], "b256_img_s")),
            ("batched / raw b256", ">=", 0.85,
             many / mean_limit(around["batched"], "b256_img_s")),
            ("c1 p50 / raw b1", "<=", 2.0, runs["c1"].p50_ms / mean_limit(around["c1"], "b1_ms")),
            ("V2 JSON c1 p50 / upload c1 p50", "<=", 1.3,
             runs["v2_c1"].p50_ms / runs["c1"].p50_ms),
            ("V2 JSON batched / frozen b256", ">=", 0.9,
             64 * runs["v2_batched"].requests_per_s
             / mean_limit(around["v2_batched"], "frozen_b256_img_s")),
            # a peer that completed no request in its window counts as one: a lower bound
            ("same JSON body c64: ours / naive", ">=", 30.0,
             runs["tfs_c64"].requests_per_s / max(naive.requests_per_s, 1 / s)),
            ("same JSON body c64: ours / LitServe", ">", 1.0,
             runs["tfs_c64"].requests_per_s / max(lit.requests_per_s, 1 / s)),
            # against the fastest runtime's in-process limits
            ("V2 JSON batched / fastest runtime b256", ">=", 0.9,
             64 * runs["v2_batched"].requests_per_s
             / mean_limit(around["v2_batched"], "best_b256_img_s")),
            ("V2 JSON c1 p50 / fastest runtime b1", "<=", 1.5,
             runs["v2_c1"].p50_ms / mean_limit(around["v2_c1"], "best_b1_ms")),
        ]
        if triton:  # the same V2 JSON bodies
            goals += [
                ("V2 JSON c64 single: ours / Triton", ">=", 1.5,
                 runs["v2_c64"].requests_per_s / max(triton["v2_c64"].requests_per_s, 1 / s)),
                ("V2 JSON batched: ours / Triton", ">=", 1.2,
                 runs["v2_batched"].requests_per_s
                 / max(triton["v2_batched"].requests_per_s, 1 / s)),
                ("V2 JSON c1 p50: ours / Triton", "<=", 0.5,
                 runs["v2_c1"].p50_ms / triton["v2_c1"].p50_ms),
            ]
        for what, op, goal, value in goals:
            key = f"[{name}] {what} (goal {op} {goal:g})"
            ratios[key] = value
            met[key] = _COMPARE[op](value, goal)
    key = "capture at rate 1, c64 single / capture off (goal >= 0.9)"
    ratios[key] = captured.requests_per_s / max(ours[default]["c64"].requests_per_s, 1e-9)
    met[key] = ratios[key] >= 0.9
    results["ratios"] = ratios
    print("\nratios")
    for k, v in ratios.items():
        print(f"  {k:<78} {v:7.2f} {'met' if met[k] else 'MISSED'}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "serving.json").write_text(json.dumps(results, indent=2))
    serving_figure(results, default, FIGURE)
    print(f"figure: {FIGURE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
