"""The same inputs through every face (REST and gRPC) agree: the same outcome for good
input, and the same refusal, from the same limit, for bad input."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.helpers import BUNDLED_MODELS, Server, fixture_images, free_port, png, run_server

MAX_INSTANCES = 8
MAX_REQUEST_PIXELS = 100_000
DIGIT_LABEL, DIGIT_PNG = fixture_images("digits")[0]
DIGIT = cv2.imdecode(np.frombuffer(DIGIT_PNG, np.uint8), cv2.IMREAD_GRAYSCALE)

HTTP_OUTCOME = {200: "ok", 400: "invalid", 415: "invalid", 422: "invalid", 404: "not found",
                413: "too large", 503: "unavailable"}
GRPC_OUTCOME = {grpc.StatusCode.OK: "ok", grpc.StatusCode.INVALID_ARGUMENT: "invalid",
                grpc.StatusCode.NOT_FOUND: "not found",
                grpc.StatusCode.RESOURCE_EXHAUSTED: "too large",
                grpc.StatusCode.UNAVAILABLE: "unavailable"}


@dataclass(frozen=True)
class Case:
    """One input: pixel tensor (``pixels`` with a declared ``shape``) or encoded pictures."""

    name: str
    expect: str
    model: str = "mnist"
    pixels: np.ndarray | None = None
    pictures: tuple[bytes, ...] = ()
    needle: str = ""


def digits(n: int) -> np.ndarray:
    return np.repeat(DIGIT[None, :, :, None], n, axis=0)


TENSOR_CASES = [
    Case("a real digit", "ok", pixels=digits(1)),
    Case("a batch at the limit", "ok", pixels=digits(MAX_INSTANCES)),
    Case("an empty batch", "invalid", pixels=digits(0), needle="empty"),
    Case("one image over the batch limit", "too large", pixels=digits(MAX_INSTANCES + 1),
         needle=f"the limit is {MAX_INSTANCES}"),
    Case("a wrong shape", "invalid", pixels=np.zeros((1, 27, 28, 1), np.uint8),
         needle="does not match"),
    Case("pixels over 255", "invalid", pixels=np.full((1, 28, 28, 1), 300, np.int32),
         needle="0..255"),
    Case("an unknown model", "not found", model="nope", pixels=digits(1), needle="'nope'"),
]
big = png(np.zeros((400, 400), np.uint8))  # 160,000 pixels
PICTURE_CASES = [
    Case("a real digit", "ok", pictures=(DIGIT_PNG,)),
    Case("pictures at the pixel budget", "ok", pictures=(png(np.zeros((200, 200), np.uint8)),)
         * 2),
    Case("pictures over the pixel budget together", "too large",
         pictures=(png(np.zeros((200, 200), np.uint8)),) * 3, needle="pixels together"),
    Case("one picture over the budget", "too large", pictures=(big,),
         needle=f"the limit is {MAX_REQUEST_PIXELS}"),
    Case("not a picture", "invalid", pictures=(b"not a picture at all",),
         needle="not supported"),
    Case("an unknown model", "not found", model="nope", pictures=(DIGIT_PNG,), needle="'nope'"),
]


@dataclass(frozen=True)
class Answer:
    outcome: str
    message: str = ""
    top: int | None = None


Face = Callable[[Server, int, Case], Answer]


def http_answer(r: httpx.Response, top: Callable[[dict[str, object]], int]) -> Answer:
    outcome = HTTP_OUTCOME.get(r.status_code, f"HTTP {r.status_code}")
    if r.status_code == 200:
        return Answer(outcome, top=top(r.json()))
    return Answer(outcome, r.json()["error"])


def grpc_answer(call: Callable[[], object], top: Callable[[object], int]) -> Answer:
    try:
        return Answer("ok", top=top(call()))
    except grpc.RpcError as exc:
        return Answer(GRPC_OUTCOME.get(exc.code(), exc.code().name), exc.details() or "")


def tfs_rest_tensor(server: Server, _: int, case: Case) -> Answer:
    assert case.pixels is not None
    r = httpx.post(f"{server.url}/v1/models/{case.model}:predict",
                   json={"instances": case.pixels.tolist()}, timeout=30)
    return http_answer(r, lambda b: int(np.argmax(b["predictions"][0])))  # type: ignore[index]


def v2_rest_tensor(server: Server, _: int, case: Case) -> Answer:
    assert case.pixels is not None
    body = {"inputs": [{"name": "image", "shape": list(case.pixels.shape),
                        "datatype": "INT32" if case.pixels.dtype == np.int32 else "UINT8",
                        "data": case.pixels.ravel().tolist()}]}
    r = httpx.post(f"{server.url}/v2/models/{case.model}/infer", json=body, timeout=30)
    return http_answer(r, lambda b: int(np.argmax(b["outputs"][0]["data"])))  # type: ignore[index]


def tfs_grpc_tensor(server: Server, port: int, case: Case) -> Answer:
    assert case.pixels is not None
    request = predict_pb2.PredictRequest()
    request.model_spec.name = case.model
    proto = request.inputs["image"]
    proto.dtype = types_pb2.DT_INT32 if case.pixels.dtype == np.int32 else types_pb2.DT_UINT8
    proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in case.pixels.shape]))
    proto.tensor_content = case.pixels.tobytes()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return grpc_answer(lambda: stub.Predict(request, timeout=30),
                           lambda r: int(np.argmax(tf.make_ndarray(r.outputs["probabilities"])[0])))  # type: ignore[attr-defined]


def v2_grpc_tensor(server: Server, port: int, case: Case) -> Answer:
    assert case.pixels is not None
    request = service_pb2.ModelInferRequest(model_name=case.model)
    request.inputs.add(name="image", shape=list(case.pixels.shape),
                       datatype="INT32" if case.pixels.dtype == np.int32 else "UINT8")
    request.raw_input_contents.append(case.pixels.tobytes())
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        return grpc_answer(
            lambda: stub.ModelInfer(request, timeout=30),
            lambda r: int(np.argmax(np.frombuffer(r.raw_output_contents[0], np.float32))))  # type: ignore[attr-defined]


def upload(server: Server, _: int, case: Case) -> Answer:
    files = [("file", (f"{i}.png", p, "image/png")) for i, p in enumerate(case.pictures)]
    r = httpx.post(f"{server.url}/api/models/{case.model}/predict", files=files, timeout=30)
    return http_answer(r, lambda b: b["predictions"][0]["top_k"][0]["class_index"])  # type: ignore[index]


def tfs_rest_pictures(server: Server, _: int, case: Case) -> Answer:
    instances = [{"b64": base64.b64encode(p).decode()} for p in case.pictures]
    r = httpx.post(f"{server.url}/v1/models/{case.model}:predict",
                   json={"instances": instances}, timeout=30)
    return http_answer(r, lambda b: int(np.argmax(b["predictions"][0])))  # type: ignore[index]


def tfs_grpc_pictures(server: Server, port: int, case: Case) -> Answer:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = case.model
    request.inputs["image"].CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, string_val=list(case.pictures),
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(case.pictures))])))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return grpc_answer(lambda: stub.Predict(request, timeout=30),
                           lambda r: int(np.argmax(tf.make_ndarray(r.outputs["probabilities"])[0])))  # type: ignore[attr-defined]


TENSOR_FACES: dict[str, Face] = {"TF Serving REST": tfs_rest_tensor,
                                 "TF Serving gRPC": tfs_grpc_tensor,
                                 "V2 REST": v2_rest_tensor, "V2 gRPC": v2_grpc_tensor}
PICTURE_FACES: dict[str, Face] = {"upload": upload, "TF Serving REST b64": tfs_rest_pictures,
                                  "TF Serving gRPC DT_STRING": tfs_grpc_pictures}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    port = free_port()
    with run_server(BUNDLED_MODELS, tmp_path_factory.mktemp("agree"), grpc_port=str(port),
                    max_instances=str(MAX_INSTANCES),
                    max_request_pixels=str(MAX_REQUEST_PIXELS)) as server:
        yield server, port


def check_agreement(served: tuple[Server, int], faces: dict[str, Face], case: Case) -> None:
    answers = {name: face(*served, case) for name, face in faces.items()}
    outcomes = {name: a.outcome for name, a in answers.items()}
    assert set(outcomes.values()) == {case.expect}, outcomes
    for name, answer in answers.items():
        assert case.needle in answer.message, (name, answer.message)
    if case.expect == "ok" and case.name == "a real digit":
        assert {a.top for a in answers.values()} == {DIGIT_LABEL}


@pytest.mark.parametrize("case", TENSOR_CASES, ids=[c.name for c in TENSOR_CASES])
def test_tensor_faces_agree(served: tuple[Server, int], case: Case) -> None:
    check_agreement(served, TENSOR_FACES, case)


@pytest.mark.parametrize("case", PICTURE_CASES, ids=[c.name for c in PICTURE_CASES])
def test_picture_faces_agree(served: tuple[Server, int], case: Case) -> None:
    check_agreement(served, PICTURE_FACES, case)


def test_model_ready_on_an_unknown_model_is_not_found_on_both_faces(
        served: tuple[Server, int]) -> None:
    server, port = served
    assert httpx.get(f"{server.url}/v2/models/nope/ready").status_code == 404
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.ModelReady(service_pb2.ModelReadyRequest(name="nope"), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert stub.ModelReady(service_pb2.ModelReadyRequest(name="mnist"), timeout=10).ready


def test_model_statistics_agree_between_rest_and_grpc(served: tuple[Server, int]) -> None:
    server, port = served
    tfs_rest_tensor(server, port, Case("warm", "ok", pixels=digits(1)))
    rest = httpx.get(f"{server.url}/v2/models/mnist/stats").json()["model_stats"]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        got = stub.ModelStatistics(service_pb2.ModelStatisticsRequest(name="mnist"), timeout=10)
    assert [s.version for s in got.model_stats] == [s["version"] for s in rest]
    assert got.model_stats[0].inference_count >= rest[0]["inference_count"] >= 1
