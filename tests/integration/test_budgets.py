"""Each budget, over real HTTP and gRPC on a one-worker service: a request just over it is
refused with a 4xx before any work (almost no CPU spent, nothing allocated); while the
heaviest accepted request of a kind runs, the event loop's thread stays idle (the work is
on the compute pool) and /health/live answers.

Work is counted in CPU seconds from /proc, not in wall-clock time: what the server did,
whatever else the machine is busy with."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.helpers import Server, export_tiny, free_port, png, run_server

MiB = 1024 * 1024
MAX_OUTPUT_VALUES = 10_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    models = tmp_path_factory.mktemp("budget-models")
    export_tiny(models / "tiny")
    port = free_port()
    with run_server(models, tmp_path_factory.mktemp("budgets"), grpc_port=str(port),
                    max_output_values=str(MAX_OUTPUT_VALUES)) as server:
        yield server, port


def peak_rss(server: Server) -> int:
    """The worker's peak resident memory (VmHWM), in bytes."""
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(server: Server, loop_thread_only: bool = False) -> float:
    """CPU time (user + system) the worker has used: all its threads, or only the main
    thread's, which runs the event loop."""
    pid = server.proc.pid
    stat = Path(f"/proc/{pid}/task/{pid}/stat" if loop_thread_only else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command's name
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime + stime


# what refusing may cost at most; serving the smallest over-budget request costs far more
REFUSAL_CPU_S = 0.05


def refused_quickly(server: Server, send: Callable[[], tuple[int | str, str]],
                    status: int | str, needle: str) -> None:
    before, cpu_before = peak_rss(server), cpu_seconds(server)
    got, message = send()
    spent = cpu_seconds(server) - cpu_before
    assert (got, needle in message) == (status, True), message
    assert spent < REFUSAL_CPU_S, f"refusing cost {spent:.2f} CPU seconds"
    assert peak_rss(server) - before < 100 * MiB


def http(server: Server, path: str, **kwargs: object) -> tuple[int, str]:
    r = httpx.post(f"{server.url}{path}", timeout=30, **kwargs)  # type: ignore[arg-type]
    return r.status_code, r.json().get("error", "") if r.status_code != 200 else ""


BLACK_4096 = png(np.zeros((4096, 4096), np.uint8))  # 16,777,216 pixels: one is the budget


def test_decoded_pixels_per_request(served: tuple[Server, int]) -> None:
    server, _ = served
    files = [("file", (f"{i}.png", BLACK_4096, "image/png")) for i in range(2)]
    refused_quickly(server, lambda: http(server, "/api/models/tiny/predict", files=files),
                    413, "the limit is 16777216 per request")


def test_a_tensor_declared_huge_over_grpc(served: tuple[Server, int]) -> None:
    server, port = served
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.inputs["image"].CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_UINT8, int_val=[0], tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in (1000, 1000, 1000, 1)])))

    def send() -> tuple[str, str]:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            try:
                stub.Predict(request, timeout=30)
            except grpc.RpcError as exc:
                return exc.code().name, exc.details() or ""
        return "OK", ""

    refused_quickly(server, send, "INVALID_ARGUMENT", "does not match the model input")


def test_a_tensor_declared_huge_over_v2_rest(served: tuple[Server, int]) -> None:
    server, _ = served
    body = {"inputs": [{"name": "image", "shape": [10**9, 28, 28, 1], "datatype": "UINT8",
                        "data": [0]}]}
    refused_quickly(server, lambda: http(server, "/v2/models/tiny/infer", json=body), 413,
                    "the limit is 1024")


def test_an_empty_batch(served: tuple[Server, int]) -> None:
    server, _ = served
    body = {"inputs": [{"name": "image", "shape": [0, 28, 28, 1], "datatype": "UINT8",
                        "data": []}]}
    refused_quickly(server, lambda: http(server, "/v2/models/tiny/infer", json=body), 400,
                    "empty")


def test_image_operations_cost(served: tuple[Server, int]) -> None:
    server, _ = served
    ops = [{"op": "resize", "width": 4096, "height": 4096},
           {"op": "pool", "size": 64, "stride": 1}]
    refused_quickly(server, lambda: http(
        server, "/api/pipeline", params={"ops": json.dumps(ops), "color": "rgb"},
        content=png(np.zeros((1, 1), np.uint8)), headers={"content-type": "image/png"}),
        413, "the limit is 2000000000")


def test_inspection_outputs(served: tuple[Server, int]) -> None:
    server, _ = served
    body = {"signature_name": "activations", "instances": np.zeros((4, 28, 28, 1)).tolist()}
    refused_quickly(server, lambda: http(server, "/v1/models/tiny:predict", json=body), 413,
                    f"the limit is {MAX_OUTPUT_VALUES}")


def test_integrated_gradients_count_their_path(served: tuple[Server, int]) -> None:
    """Four pictures' Grad-CAM fit the output budget; integrated gradients of the same
    four also compute 32 more gradients each, and are refused before any is."""
    server, _ = served
    body = {"instances": np.zeros((4, 28, 28, 1), np.uint8).tolist()}
    assert http(server, "/v1/models/tiny:explain", json=body)[0] == 200
    refused_quickly(server, lambda: http(server, "/v1/models/tiny:explain",
                                         json={**body, "method": "integrated-gradients"}),
                    413, f"the limit is {MAX_OUTPUT_VALUES}")


HEAVIEST = {
    "upload at the pixel budget": ("/api/models/tiny/predict",
                                   {"content": BLACK_4096, "headers": {"content-type":
                                                                       "image/png"}}),
    "TF Serving b64 at the pixel budget": ("/v1/models/tiny:predict", {"json": {
        "instances": [{"b64": base64.b64encode(BLACK_4096).decode()}]}}),
    "V2 JSON at the batch limit": ("/v2/models/tiny/infer", {"json": {"inputs": [{
        "name": "image", "shape": [1024, 28, 28, 1], "datatype": "UINT8",
        "data": [0] * (1024 * 784)}]}}),
    "pipeline just under the cost budget": ("/api/pipeline", {
        "params": {"ops": json.dumps([{"op": "resize", "width": 4096, "height": 4096},
                                      {"op": "filter", "kernel": "sobel_magnitude"}]),
                   "color": "rgb"},
        "content": png(np.zeros((1, 1), np.uint8)), "headers": {"content-type": "image/png"}}),
}


# the event loop's share of the CPU a heavy request costs, at most
LOOP_SHARE = 0.25


@pytest.mark.parametrize("kind", list(HEAVIEST))
def test_the_event_loop_stays_free_while_the_heaviest_accepted_request_runs(
        served: tuple[Server, int], kind: str) -> None:
    """The request again and again for a second, /health/live probed meanwhile: every
    probe answers, and the event loop's thread spends a small share of the CPU the
    requests cost (decoding, parsing and the model run on other threads)."""
    server, _ = served
    path, kwargs = HEAVIEST[kind]
    answers: list[int] = []

    def heavy() -> None:
        until = time.monotonic() + 1.0
        with httpx.Client(base_url=server.url, timeout=60) as c:
            while not answers or time.monotonic() < until:
                answers.append(c.post(path, **kwargs).status_code)  # type: ignore[arg-type]

    loop_before, all_before = cpu_seconds(server, loop_thread_only=True), cpu_seconds(server)
    worker = threading.Thread(target=heavy)
    worker.start()
    probes = []
    with httpx.Client(base_url=server.url, timeout=10) as c:
        while worker.is_alive():
            probes.append(c.get("/health/live").status_code)
            time.sleep(0.02)
    worker.join()
    on_loop = cpu_seconds(server, loop_thread_only=True) - loop_before
    spent = cpu_seconds(server) - all_before
    assert set(answers) == {200} and set(probes) == {200} and len(probes) >= 3
    assert on_loop < LOOP_SHARE * spent, f"{on_loop:.2f} of {spent:.2f} CPU s on the loop"


def test_request_bodies_held_at_once(tmp_path: Path) -> None:
    models = tmp_path / "models"
    export_tiny(models / "tiny")
    with run_server(models, tmp_path, max_body_memory_bytes="1000") as server:
        r = httpx.post(f"{server.url}/api/models/tiny/predict", content=b"x" * 1500,
                       headers={"content-type": "image/png"})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "too many request bodies" in r.json()["error"]
        small = png(np.zeros((28, 28), np.uint8))  # 1000 bytes fit: served
        r = httpx.post(f"{server.url}/api/models/tiny/predict", content=small,
                       headers={"content-type": "image/png"})
        assert r.status_code == 200, r.text
