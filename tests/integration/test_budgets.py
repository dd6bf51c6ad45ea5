"""Each budget, over real HTTP and gRPC on a one-worker service: a request just over it is
refused with a 4xx before any work (almost no CPU spent, nothing allocated); while the
heaviest accepted request of a kind runs, the event loop's thread stays idle (the work is
on the compute pool) and /health/live answers.

Work is counted in CPU seconds from /proc, not in wall-clock time: what the server did,
whatever else the machine is busy with."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import grpc
import httpx
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.helpers import (
    Server,
    cpu_seconds,
    export_tiny,
    free_port,
    png,
    progressive_jpeg,
    refused_quickly,
    run_server,
)

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


def http(server: Server, path: str, **kwargs: object) -> tuple[int, str]:
    r = httpx.post(f"{server.url}{path}", timeout=30, **kwargs)  # type: ignore[arg-type]
    return r.status_code, r.json().get("error", "") if r.status_code != 200 else ""


BLACK_4096 = png(np.zeros((4096, 4096), np.uint8))  # 16,777,216 pixels: one is the budget


def test_decoded_pixels_per_request(served: tuple[Server, int]) -> None:
    server, _ = served
    files = [("file", (f"{i}.png", BLACK_4096, "image/png")) for i in range(2)]
    refused_quickly(server, lambda: http(server, "/api/models/tiny/predict", files=files),
                    413, "the limit is 16777216 per request")


def accepted_cpu(server: Server, path: str, **kwargs: object) -> float:
    """The worker's CPU seconds for one accepted request (the cheaper of two)."""
    costs = []
    for _ in range(2):
        before = cpu_seconds(server)
        r = httpx.post(f"{server.url}{path}", timeout=60, **kwargs)  # type: ignore[arg-type]
        costs.append(cpu_seconds(server) - before)
        assert r.status_code == 200, r.text
    return min(costs)


def raw_upload_cpu(server: Server, blob: bytes) -> float:
    """The worker's CPU seconds for one raw upload of ``blob`` (the cheaper of two)."""
    return accepted_cpu(server, "/api/models/tiny/predict", content=blob,
                        headers={"content-type": "application/octet-stream"})


def test_split_requests_at_the_budget_cost_what_one_picture_at_it_does(
        served: tuple[Server, int]) -> None:
    """Two half-budget pictures between rows of pixels, or a half-budget context picture
    applied to two examples, cost a few times one full-budget PNG at most: the budget is
    of the request, whatever its parts."""
    server, _ = served
    circle = cv2.circle(np.zeros((4096, 4096), np.uint8), (2048, 2048), 900, 255, 40)
    png_cpu = raw_upload_cpu(server, png(circle))
    half = {"b64": base64.b64encode(png(circle[:2048])).decode()}
    row = np.zeros((28, 28, 1), np.uint8).tolist()
    split = accepted_cpu(server, "/v1/models/tiny:predict",
                         json={"instances": [half, row, half]})
    context = accepted_cpu(server, "/v1/models/tiny:classify", json={
        "context": {"image": half}, "examples": [{}, {"image": [0] * 784}, {}]})
    assert max(split, context) < 4 * png_cpu, (split, context, png_cpu)


def test_the_costliest_accepted_jpeg_costs_a_few_full_budget_pngs(
        served: tuple[Server, int]) -> None:
    """A progressive JPEG decodes its pixels once per scan: at the full pixel budget the
    default allows 10 scans, and such a picture costs a few times a PNG of the same size;
    one scan more is refused before any is decoded."""
    server, _ = served
    circle = cv2.circle(np.zeros((4096, 4096), np.uint8), (2048, 2048), 900, 255, 40)
    png_cpu = raw_upload_cpu(server, png(circle))
    jpeg_cpu = raw_upload_cpu(server, progressive_jpeg(circle, 10))
    assert jpeg_cpu < 4 * png_cpu, (jpeg_cpu, png_cpu)
    refused_quickly(server, lambda: http(
        server, "/api/models/tiny/predict", content=progressive_jpeg(circle, 11),
        headers={"content-type": "image/jpeg"}), 413, "pixels x JPEG scans")


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


def json_body(body: object) -> dict[str, Any]:
    """A JSON body encoded once: the client sends as fast as the service answers."""
    return {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


HEAVIEST: dict[str, tuple[str, dict[str, Any]]] = {
    "upload at the pixel budget": ("/api/models/tiny/predict",
                                   {"content": BLACK_4096, "headers": {"content-type":
                                                                       "image/png"}}),
    "TF Serving b64 at the pixel budget": ("/v1/models/tiny:predict", json_body({
        "instances": [{"b64": base64.b64encode(BLACK_4096).decode()}]})),
    "V2 JSON at the batch limit": ("/v2/models/tiny/infer", json_body({"inputs": [{
        "name": "image", "shape": [1024, 28, 28, 1], "datatype": "UINT8",
        "data": [0] * (1024 * 784)}]})),
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


def v2_grpc_infer(port: int, images: int) -> tuple[str, str]:
    request = service_pb2.ModelInferRequest(model_name="tiny")
    request.inputs.add(name="image", datatype="UINT8", shape=[images, 28, 28, 1])
    request.raw_input_contents.append(bytes(images * 784))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
        except grpc.RpcError as exc:
            return exc.code().name, exc.details() or ""
    return "OK", ""


@pytest.fixture
def thin(tmp_path: Path) -> Iterator[tuple[Server, int]]:
    """A service whose workers hold at most 1,000 bytes of bodies and messages at once."""
    models = tmp_path / "models"
    export_tiny(models / "tiny")
    port = free_port()
    with run_server(models, tmp_path, max_body_memory_bytes="1000",
                    grpc_port=str(port)) as server:
        yield server, port


def test_request_bodies_held_at_once(thin: tuple[Server, int]) -> None:
    server, port = thin
    r = httpx.post(f"{server.url}/api/models/tiny/predict", content=b"x" * 1500,
                   headers={"content-type": "image/png"})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "too many request bodies" in r.json()["error"]
    small = png(np.zeros((28, 28), np.uint8))  # 1000 bytes fit: served
    r = httpx.post(f"{server.url}/api/models/tiny/predict", content=small,
                   headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    # gRPC messages share the budget: one image's message fits, two images' does not
    assert v2_grpc_infer(port, 1) == ("OK", "")
    refused_quickly(server, lambda: v2_grpc_infer(port, 2), "RESOURCE_EXHAUSTED",
                    "too many request bodies")


def test_a_body_that_trickles_holds_only_what_it_sent(thin: tuple[Server, int]) -> None:
    """Connections that declare big bodies and send a few bytes hold those few bytes of
    the budget, not what they declared: other requests are served meanwhile."""
    server, _ = thin
    port = int(server.url.rsplit(":", 1)[1])
    slow = []
    for _ in range(2):  # 2 x 490 bytes declared: the next body would not fit beside them
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /api/models/tiny/predict HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: image/png\r\nContent-Length: 490\r\n\r\n\x89PNG")
        slow.append(s)
    try:
        small = png(np.zeros((28, 28), np.uint8))
        r = httpx.post(f"{server.url}/api/models/tiny/predict", content=small,
                       headers={"content-type": "image/png"})
        assert r.status_code == 200, r.text
    finally:
        for s in slow:
            s.close()
