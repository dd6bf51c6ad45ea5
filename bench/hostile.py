"""Hostile load: clients sending the heaviest accepted request of every route and face
(HTTP and gRPC, whole and split into parts), while one client posts single digits. Prints
each worker's peak memory against its steady memory, the digit client's p50/p99 against
an idle run, and the answers by status (gRPC: by code; INTERNAL, UNKNOWN, UNAVAILABLE and
DEADLINE_EXCEEDED count as 5xx).

Goals (default settings, the service as ``make run`` starts it): no 5xx, peak RSS per
worker within steady + 1 GiB, digit p99 under 5x the idle run's.

    python bench/hostile.py [--seconds 60] [--clients 4]

With ``--each``: one worker, each heavy HTTP request sent alone (twice), and the
worker's peak RSS over its RSS before it: what each request holds at its heaviest.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import grpc
import httpx
import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tritonclient.grpc import service_pb2, service_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import first_digit, free_port, server, service_env

GiB = 1024**3
SIDE = 4096  # 4096 x 4096 = the default per-request pixel budget


def png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


def progressive_jpeg(img: np.ndarray, scans: int) -> bytes:
    """``img`` as a progressive JPEG of ``scans`` scans (its last scan repeated)."""
    jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    last, end = jpeg.rfind(b"\xff\xda"), jpeg.rfind(b"\xff\xd9")
    return jpeg[:end] + jpeg[last:end] * (scans - jpeg.count(b"\xff\xda")) + jpeg[end:]


def gradient(height: int, width: int) -> np.ndarray:
    """A fine gradient: a picture whose PNG stays under the upload cap at the budget."""
    rows, cols = np.arange(height, dtype=np.uint16), np.arange(width, dtype=np.uint16)
    return (np.add.outer(rows, 3 * cols) % 256).astype(np.uint8)


def heaviest(digit: bytes) -> dict[str, tuple[str, dict[str, Any]]]:
    """The heaviest request each route accepts at the default settings."""
    noise = png(gradient(SIDE, SIDE))  # a picture at the pixel budget
    half = base64.b64encode(png(gradient(SIDE // 2, SIDE))).decode()  # two fill the budget
    scans = progressive_jpeg(gradient(SIDE, SIDE), 10)  # the decode-work budget
    pixel = png(np.zeros((1, 1), np.uint8))
    raw = {"headers": {"content-type": "image/png"}}
    rows = np.zeros((1024, 28, 28, 1), np.uint8)
    return {
        "upload at the pixel budget": ("/api/models/mnist/predict", {"content": noise, **raw}),
        "64 digits": ("/api/models/mnist/predict", {"files": [
            ("file", (f"{i}.png", digit, "image/png")) for i in range(64)]}),
        "TF Serving b64 at the pixel budget": ("/v1/models/mnist:predict", {"json": {
            "instances": [{"b64": base64.b64encode(noise).decode()}]}}),
        "TF Serving b64 split by a row": ("/v1/models/mnist:predict", {"json": {
            "instances": [{"b64": half}, np.zeros((28, 28, 1), int).tolist(),
                          {"b64": half}]}}),
        "TF Serving classify, context split": ("/v1/models/mnist:classify", {"json": {
            "context": {"image": {"b64": half}},
            "examples": [{}, {"image": [0] * 784}, {}]}}),
        "progressive JPEG at the scan budget": ("/api/models/mnist/predict", {
            "content": scans, "headers": {"content-type": "image/jpeg"}}),
        "V2 JSON, 1024 images": ("/v2/models/mnist/infer", {"json": {"inputs": [{
            "name": "image", "shape": list(rows.shape), "datatype": "UINT8",
            "data": rows.ravel().tolist()}]}}),
        "pipeline under the cost budget": ("/api/pipeline", {"params": {
            "ops": json.dumps([{"op": "resize", "width": SIDE, "height": SIDE},
                               {"op": "filter", "kernel": "sobel_magnitude"}]),
            "color": "rgb"}, "content": pixel, **raw}),
        "filter, rgb, at the pixel budget": ("/api/filter", {"params": {
            "kernel": "gaussian", "size": "5", "color": "rgb"}, "content": noise, **raw}),
        "pool 64 stride 8 at the budget": ("/api/pool", {"params": {
            "size": "64", "stride": "8"}, "content": noise, **raw}),
        "activations": ("/api/models/mnist/activations", {"content": digit, **raw}),
        "Grad-CAM": ("/api/models/mnist/gradcam", {"content": digit, **raw}),
    }


def shape(*dims: int) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])


def example(value: bytes | list[float] | None) -> example_pb2.Example:
    feature = {} if value is None else {"image": (
        feature_pb2.Feature(bytes_list=feature_pb2.BytesList(value=[value]))
        if isinstance(value, bytes)
        else feature_pb2.Feature(float_list=feature_pb2.FloatList(value=value)))}
    return example_pb2.Example(features=feature_pb2.Features(feature=feature))


GrpcCall = tuple[str, str, Any]  # (service: "tfs" or "v2", method, request)


def heaviest_grpc() -> dict[str, GrpcCall]:
    """The heaviest gRPC calls accepted at the default settings, whole and split."""
    noise = png(gradient(SIDE, SIDE))
    half = png(gradient(SIDE // 2, SIDE))
    predict = predict_pb2.PredictRequest()
    predict.model_spec.name = "mnist"
    predict.inputs["image"].CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, string_val=[noise], tensor_shape=shape(1)))
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = "mnist"
    listed = classify.input.example_list_with_context
    listed.context.CopyFrom(example(half))
    listed.examples.extend([example(None), example([0.0] * 784), example(None)])
    infer = service_pb2.ModelInferRequest(model_name="mnist")
    infer.inputs.add(name="image", datatype="UINT8", shape=[512, 28, 28, 1])
    infer.inputs.add(name="image", datatype="UINT8", shape=[512, 28, 28, 1])
    infer.raw_input_contents.extend([bytes(512 * 784)] * 2)
    return {"gRPC Predict at the pixel budget": ("tfs", "Predict", predict),
            "gRPC Classify, context split": ("tfs", "Classify", classify),
            "gRPC V2 1024 images in two inputs": ("v2", "ModelInfer", infer)}


SERVER_ERRORS = {"INTERNAL", "UNKNOWN", "UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS"}


def grpc_hammer(port: int, calls: dict[str, GrpcCall], stop: threading.Event,
                statuses: collections.Counter[tuple[str, int | str]], offset: int) -> None:
    names = list(calls)
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[
            ("grpc.max_send_message_length", 16 * 2**20)]) as channel:
        stubs = {"tfs": prediction_service_pb2_grpc.PredictionServiceStub(channel),
                 "v2": service_pb2_grpc.GRPCInferenceServiceStub(channel)}
        i = offset
        while not stop.is_set():
            name = names[i % len(names)]
            service, method, request = calls[name]
            try:
                getattr(stubs[service], method)(request, timeout=120)
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name
            statuses[(name, code)] += 1
            i += 1


def worker_pids(supervisor: int) -> list[int]:
    """The server processes (the supervisor's children but multiprocessing's helper)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    workers = [int(c) for c in children
               if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]
    return workers or [supervisor]


def memory(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def digit_latencies(url: str, digit: bytes, stop: threading.Event) -> list[float]:
    out = []
    with httpx.Client(base_url=url, timeout=60) as c:
        while not stop.is_set():
            started = time.perf_counter()
            r = c.post("/api/models/mnist/predict", content=digit,
                       headers={"content-type": "image/png"})
            out.append(time.perf_counter() - started)
            assert r.status_code == 200, r.text
    return out


def quantiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=100)
    return q[49] * 1000, q[98] * 1000


def hammer(url: str, routes: dict[str, tuple[str, dict[str, Any]]], stop: threading.Event,
           statuses: collections.Counter[tuple[str, int | str]], offset: int) -> None:
    names = list(routes)
    with httpx.Client(base_url=url, timeout=120) as c:
        i = offset
        while not stop.is_set():
            name = names[i % len(names)]
            path, kwargs = routes[name]
            statuses[(name, c.post(path, **kwargs).status_code)] += 1
            i += 1


def timed(seconds: float, work: Callable[[threading.Event], None]) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=work, args=(stop,))
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()


def reset_peak(pid: int) -> None:
    """Start ``pid``'s VmHWM again from its RSS now (Linux's clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def each_alone(routes: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """Each request alone to a one-worker service: its peak RSS over the RSS before."""
    port = free_port()
    with server([sys.executable, "-m", "service"], port, "/health/ready",
                env=service_env(port, CNNLAB_WORKERS="1")) as (url, pid), \
            httpx.Client(base_url=url, timeout=120) as client:
        print("one worker, each request alone (twice): peak RSS over the RSS before it")
        for name, (path, kwargs) in routes.items():
            reset_peak(pid)
            before = memory(pid, "VmRSS")
            codes = {client.post(path, **kwargs).status_code for _ in range(2)}
            grew = (memory(pid, "VmHWM") - before) / 2**20
            print(f"  {name:<40} {'/'.join(map(str, sorted(codes)))} +{grew:,.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=4, help="hostile clients")
    ap.add_argument("--each", action="store_true",
                    help="each heavy request alone, with its peak memory")
    args = ap.parse_args()
    digit = first_digit()
    if args.each:
        each_alone(heaviest(digit))
        return
    routes, calls = heaviest(digit), heaviest_grpc()
    port, grpc_port = free_port(), free_port()
    with server([sys.executable, "-m", "service"], port, "/health/ready",
                env=service_env(port, CNNLAB_GRPC_PORT=str(grpc_port))) as (url, pid):
        idle: list[float] = []
        timed(min(20.0, args.seconds / 2), lambda stop: idle.extend(
            digit_latencies(url, digit, stop)))
        pids = worker_pids(pid)
        steady = {p: memory(p, "VmRSS") for p in pids}
        statuses: collections.Counter[tuple[str, int | str]] = collections.Counter()
        stop = threading.Event()
        hostile = [threading.Thread(target=hammer, args=(url, routes, stop, statuses, i * 3))
                   for i in range(args.clients)]
        hostile += [threading.Thread(target=grpc_hammer,
                                     args=(grpc_port, calls, stop, statuses, i))
                    for i in range(max(1, args.clients // 2))]
        for t in hostile:
            t.start()
        loaded: list[float] = []
        timed(args.seconds, lambda s: loaded.extend(digit_latencies(url, digit, s)))
        stop.set()
        for t in hostile:
            t.join()
        peak = {p: memory(p, "VmHWM") for p in pids}
    idle50, idle99 = quantiles(idle)
    load50, load99 = quantiles(loaded)
    print(f"{len(pids)} worker(s), {args.clients} hostile clients, {args.seconds:.0f} s")
    for p in pids:
        grew = (peak[p] - steady[p]) / GiB
        print(f"  worker {p}: steady {steady[p] / 2**20:.0f} MiB, peak {peak[p] / 2**20:.0f} "
              f"MiB (+{grew:.2f} GiB; goal <= +1 GiB: {'met' if grew <= 1 else 'MISSED'})")
    ratio = load99 / idle99
    print(f"  digits: idle p50 {idle50:.1f} ms p99 {idle99:.1f} ms; under load p50 "
          f"{load50:.1f} ms p99 {load99:.1f} ms = {ratio:.2f}x idle p99 (goal < 5x: "
          f"{'met' if ratio < 5 else 'MISSED'}), {len(loaded)} requests")
    fives = sum(n for (_, status), n in statuses.items()
                if (status >= 500 if isinstance(status, int) else status in SERVER_ERRORS))
    print(f"  hostile answers: {sum(statuses.values())}, 5xx: {fives} (goal 0: "
          f"{'met' if fives == 0 else 'MISSED'})")
    for (name, status), n in sorted(statuses.items(), key=lambda kv: (kv[0][0],
                                                                     str(kv[0][1]))):
        print(f"    {name:<40} {status} x{n}")


if __name__ == "__main__":
    main()
