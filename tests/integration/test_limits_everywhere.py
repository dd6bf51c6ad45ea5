"""Every budget on every face that takes its input, each request just over it sent whole
and split into parts (pictures between pixel rows, examples sharing a context picture,
one input per part): refused with 413 / RESOURCE_EXHAUSTED (400 / INVALID_ARGUMENT for a
name the model does not take), for almost no CPU and no memory, because the dataplane
adds a request's parts up before it decodes any.

The service runs with small budgets, so a request over them is small: 40,000 pixels a
request, 10 JPEG scans at that size (400,000 pixel-passes), 8 images."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.helpers import (
    Server,
    export_tiny,
    free_port,
    png,
    progressive_jpeg,
    refused_quickly,
    run_server,
)

PIXELS, SCANS, INSTANCES = 40_000, 10, 8


def picture(width: int, height: int) -> np.ndarray:
    img = np.zeros((height, width), np.uint8)
    img[height // 4: 3 * height // 4, width // 3: 2 * width // 3] = 255
    return img


# two of these are over the request's pixels; each alone fits
HALF_OVER = png(picture(200, 150))                       # 30,000 pixels
# one of these is over the decode work (10,000 pixels x 41 scans); two of SPLIT_SCANS too
ALL_SCANS = progressive_jpeg(picture(100, 100), 41)
SPLIT_SCANS = progressive_jpeg(picture(100, 100), 21)
ROW = np.zeros((28, 28, 1), np.uint8).tolist()
FLAT = [0.0] * 784
PIXEL_BUDGET = f"the limit is {PIXELS} per request"
SCAN_BUDGET = f"the limit is {PIXELS * SCANS} per request"
INSTANCE_BUDGET = f"the limit is {INSTANCES}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    models = tmp_path_factory.mktemp("limit-models")
    export_tiny(models / "tiny")
    port = free_port()
    with run_server(models, tmp_path_factory.mktemp("limits"), grpc_port=str(port),
                    max_image_pixels=str(PIXELS), max_request_pixels=str(PIXELS),
                    max_jpeg_scans=str(SCANS), max_instances=str(INSTANCES)) as server:
        yield server, port


def b64(blob: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(blob).decode()}


# ------------------------------------------------------------------ the faces
def http(path: str, **kwargs: Any) -> Callable[[Server, int], tuple[int | str, str]]:
    def send(server: Server, _: int) -> tuple[int | str, str]:
        r = httpx.post(f"{server.url}{path}", timeout=30, **kwargs)
        return r.status_code, r.json().get("error", "") if r.status_code != 200 else ""
    return send


def upload(*blobs: bytes, path: str = "/api/models/tiny/predict"):  # type: ignore[no-untyped-def]
    files = [("file", (f"{i}.img", blob, "application/octet-stream"))
             for i, blob in enumerate(blobs)]
    return http(path, files=files)


def raw(blob: bytes, path: str = "/api/models/tiny/predict"):  # type: ignore[no-untyped-def]
    return http(path, content=blob, headers={"content-type": "application/octet-stream"})


def grpc_call(stub_of: Callable[[grpc.Channel], Any], method: str, request: Any
              ) -> Callable[[Server, int], tuple[int | str, str]]:
    def send(_: Server, port: int) -> tuple[int | str, str]:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                getattr(stub_of(channel), method)(request, timeout=30)
            except grpc.RpcError as exc:
                return exc.code().name, exc.details() or ""
        return "OK", ""
    return send


def tf_predict(**inputs: tensor_pb2.TensorProto):  # type: ignore[no-untyped-def]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    for name, proto in inputs.items():
        request.inputs[name].CopyFrom(proto)
    return grpc_call(prediction_service_pb2_grpc.PredictionServiceStub, "Predict", request)


def strings(*blobs: bytes) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=list(blobs),
                                  tensor_shape=shape_proto(len(blobs)))


def shape_proto(*dims: int) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])


def pixels(n: int) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, tensor_content=bytes(n * 784),
                                  tensor_shape=shape_proto(n, 28, 28, 1))


def example(value: bytes | list[float] | None) -> example_pb2.Example:
    feature = {} if value is None else {"image": (
        feature_pb2.Feature(bytes_list=feature_pb2.BytesList(value=[value]))
        if isinstance(value, bytes)
        else feature_pb2.Feature(float_list=feature_pb2.FloatList(value=value)))}
    return example_pb2.Example(features=feature_pb2.Features(feature=feature))


def tf_classify(examples: list[bytes | list[float] | None],
                context: bytes | None = None):  # type: ignore[no-untyped-def]
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "tiny"
    listed = (request.input.example_list_with_context if context is not None
              else request.input.example_list)
    listed.examples.extend(example(v) for v in examples)
    if context is not None:
        listed.context.CopyFrom(example(context))
    return grpc_call(prediction_service_pb2_grpc.PredictionServiceStub, "Classify", request)


def v2_grpc(*counts: int):  # type: ignore[no-untyped-def]
    request = service_pb2.ModelInferRequest(model_name="tiny")
    for n in counts:
        request.inputs.add(name="image", datatype="UINT8", shape=[n, 28, 28, 1])
        request.raw_input_contents.append(bytes(n * 784))
    return grpc_call(service_pb2_grpc.GRPCInferenceServiceStub, "ModelInfer", request)


def v2_rest(*counts: int):  # type: ignore[no-untyped-def]
    return http("/v2/models/tiny/infer", json={"inputs": [
        {"name": "image", "shape": [n, 28, 28, 1], "datatype": "UINT8", "data": [0] * n * 784}
        for n in counts]})


def rest_classify(examples: list[Any], context: Any = None):  # type: ignore[no-untyped-def]
    body: dict[str, Any] = {"examples": examples}
    if context is not None:
        body["context"] = {"image": context}
    return http("/v1/models/tiny:classify", json=body)


# ------------------------------------------------------------------ the table
# id -> (request, expected status, words of the refusal)
CASES: dict[str, tuple[Callable[[Server, int], tuple[int | str, str]], int | str, str]] = {
    # decoded pixels of the request's pictures
    "pixels/upload multipart": (upload(HALF_OVER, HALF_OVER), 413, PIXEL_BUDGET),
    "pixels/upload raw": (raw(png(picture(250, 200))), 413, f"the limit is {PIXELS}"),
    "pixels/tfserving predict whole": (http("/v1/models/tiny:predict", json={
        "instances": [b64(HALF_OVER), b64(HALF_OVER)]}), 413, PIXEL_BUDGET),
    "pixels/tfserving predict split by rows": (http("/v1/models/tiny:predict", json={
        "instances": [b64(HALF_OVER), ROW, b64(HALF_OVER)]}), 413, PIXEL_BUDGET),
    "pixels/tfserving explain split by rows": (http("/v1/models/tiny:explain", json={
        "instances": [b64(HALF_OVER), ROW, b64(HALF_OVER)]}), 413, PIXEL_BUDGET),
    "pixels/tfserving classify whole": (rest_classify(
        [{"image": b64(HALF_OVER)}, {"image": b64(HALF_OVER)}]), 413, PIXEL_BUDGET),
    "pixels/tfserving classify split": (rest_classify(
        [{"image": b64(HALF_OVER)}, {"image": FLAT}, {"image": b64(HALF_OVER)}]),
        413, PIXEL_BUDGET),
    "pixels/tfserving classify context": (rest_classify(
        [{}, {"image": FLAT}, {}], context=b64(HALF_OVER)), 413, PIXEL_BUDGET),
    "pixels/grpc predict": (tf_predict(image=strings(HALF_OVER, HALF_OVER)),
                            "RESOURCE_EXHAUSTED", PIXEL_BUDGET),
    "pixels/grpc classify whole": (tf_classify([HALF_OVER, HALF_OVER]),
                                   "RESOURCE_EXHAUSTED", PIXEL_BUDGET),
    "pixels/grpc classify split": (tf_classify([HALF_OVER, FLAT, HALF_OVER]),
                                   "RESOURCE_EXHAUSTED", PIXEL_BUDGET),
    "pixels/grpc classify context": (tf_classify([None, FLAT, None], context=HALF_OVER),
                                     "RESOURCE_EXHAUSTED", PIXEL_BUDGET),
    "pixels/activations": (raw(png(picture(250, 200)), "/api/models/tiny/activations"), 413,
                           f"the limit is {PIXELS}"),
    "pixels/filter": (raw(png(picture(250, 200)), "/api/filter?kernel=sobel_x"), 413,
                      f"the limit is {PIXELS}"),
    "pixels/compare": (raw(HALF_OVER, "/api/compare?a=tiny"), 413, PIXEL_BUDGET),
    # progressive JPEG scans: decode work
    "scans/upload multipart": (upload(SPLIT_SCANS, SPLIT_SCANS), 413, SCAN_BUDGET),
    "scans/upload raw": (raw(ALL_SCANS), 413, SCAN_BUDGET),
    "scans/tfserving predict split by rows": (http("/v1/models/tiny:predict", json={
        "instances": [b64(SPLIT_SCANS), ROW, b64(SPLIT_SCANS)]}), 413, SCAN_BUDGET),
    "scans/tfserving classify context": (rest_classify(
        [{}, {"image": FLAT}, {}], context=b64(SPLIT_SCANS)), 413, SCAN_BUDGET),
    "scans/grpc predict": (tf_predict(image=strings(ALL_SCANS)), "RESOURCE_EXHAUSTED",
                           SCAN_BUDGET),
    "scans/grpc classify split": (tf_classify([SPLIT_SCANS, FLAT, SPLIT_SCANS]),
                                  "RESOURCE_EXHAUSTED", SCAN_BUDGET),
    "scans/activations": (raw(ALL_SCANS, "/api/models/tiny/activations"), 413, SCAN_BUDGET),
    "scans/filter": (raw(ALL_SCANS, "/api/filter?kernel=sobel_x"), 413, SCAN_BUDGET),
    "scans/pipeline": (raw(ALL_SCANS, '/api/pipeline?ops=[{"op":"grayscale"}]'), 413,
                       SCAN_BUDGET),
    # images in the request, after splitting and context expansion
    "instances/tfserving predict rows": (http("/v1/models/tiny:predict", json={
        "instances": [ROW] * 9}), 413, INSTANCE_BUDGET),
    "instances/tfserving predict split": (http("/v1/models/tiny:predict", json={
        "instances": [ROW] * 4 + [b64(png(picture(28, 28)))] + [ROW] * 4}), 413,
        INSTANCE_BUDGET),
    "instances/tfserving classify context": (rest_classify([{}] * 9, context=FLAT), 413,
                                             INSTANCE_BUDGET),
    "instances/v2 rest whole": (v2_rest(9), 413, INSTANCE_BUDGET),
    "instances/v2 rest split": (v2_rest(5, 4), 413, INSTANCE_BUDGET),
    "instances/grpc predict": (tf_predict(image=pixels(9)), "RESOURCE_EXHAUSTED",
                               INSTANCE_BUDGET),
    "instances/grpc classify context": (tf_classify([None] * 9, context=FLAT),
                                        "RESOURCE_EXHAUSTED", INSTANCE_BUDGET),
    "instances/v2 grpc whole": (v2_grpc(9), "RESOURCE_EXHAUSTED", INSTANCE_BUDGET),
    "instances/v2 grpc split": (v2_grpc(5, 4), "RESOURCE_EXHAUSTED", INSTANCE_BUDGET),
    # inputs the model does not take
    "names/grpc predict": (tf_predict(image0=strings(HALF_OVER), image1=strings(HALF_OVER)),
                           "INVALID_ARGUMENT", "unknown input 'image"),
    "names/v2 rest": (http("/v2/models/tiny/infer", json={"inputs": [
        {"name": "other", "shape": [1, 28, 28, 1], "datatype": "UINT8", "data": [0] * 784}]}),
        400, "unknown input 'other'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_just_over_the_budget_is_refused_before_any_work(served: tuple[Server, int],
                                                          case: str) -> None:
    server, port = served
    send, status, needle = CASES[case]
    refused_quickly(server, lambda: send(server, port), status, needle)


def test_the_same_pictures_within_the_budget_are_served(served: tuple[Server, int]) -> None:
    """The refusals above are of the totals: one of each part alone is served."""
    server, port = served
    for send in (upload(HALF_OVER), raw(SPLIT_SCANS),
                 http("/v1/models/tiny:predict", json={"instances": [b64(SPLIT_SCANS), ROW]}),
                 rest_classify([{}, {"image": FLAT}], context=b64(HALF_OVER)),
                 tf_classify([HALF_OVER, FLAT]), v2_grpc(4, 4), v2_rest(8)):
        status, message = send(server, port)
        assert status in (200, "OK"), message


@pytest.mark.parametrize("datatype", ["FP16", "BF16"])
def test_v2_grpc_half_floats_without_raw_contents(served: tuple[Server, int],
                                                  datatype: str) -> None:
    """The protocol has no typed contents for half floats: told, not an internal error."""
    server, port = served
    request = service_pb2.ModelInferRequest(model_name="tiny")
    request.inputs.add(name="image", datatype=datatype, shape=[1, 28, 28, 1])
    send = grpc_call(service_pb2_grpc.GRPCInferenceServiceStub, "ModelInfer", request)
    assert send(server, port) == ("INVALID_ARGUMENT",
                                  f"input 'image': {datatype} values come only in "
                                  "raw_input_contents")
