"""TF Serving's Classify, on the REST face (``:classify``) and with the real gRPC stub:
examples carrying an encoded picture or its pixel values come back with every class's
label and score, best first."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import cv2
import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, prediction_service_pb2_grpc

from cnnlab.layout import list_versions
from tests.helpers import BUNDLED_MODELS, FIXTURES, Server, free_port, run_server

SEVEN = (FIXTURES / "digits" / "7_test0.png").read_bytes()
TWO = cv2.imread(str(FIXTURES / "digits" / "2_test1.png"), cv2.IMREAD_GRAYSCALE)
NEWEST = list_versions(BUNDLED_MODELS / "mnist")[-1]  # what the "latest" policy serves


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    port = free_port()
    with run_server(BUNDLED_MODELS, tmp_path_factory.mktemp("classify"),
                    grpc_port=str(port)) as server:
        yield server, f"127.0.0.1:{port}"


def check_ranked(classes: list[tuple[str, float]], best: str) -> None:
    labels, scores = [c[0] for c in classes], [c[1] for c in classes]
    assert labels[0] == best and sorted(labels) == [str(d) for d in range(10)]
    assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-3


def test_rest_classify_ranks_every_class(served: tuple[Server, str]) -> None:
    server, _ = served
    body = {"examples": [{"image": {"b64": base64.b64encode(SEVEN).decode()}},
                         {"image": TWO.ravel().tolist()}]}
    with server.client() as c:
        newest = c.post("/v1/models/mnist:classify", json=body)
        pinned = c.post(f"/v1/models/mnist/versions/{NEWEST}:classify", json=body)
    assert newest.status_code == 200, newest.text
    seven, two = newest.json()["result"]
    check_ranked(seven, "7")
    check_ranked(two, "2")
    assert pinned.status_code == 200 and pinned.json()["result"][0][0][0] == "7"


@pytest.mark.parametrize(("body", "needle"), [
    ({"examples": [{}]}, "no feature 'image'"),
    ({"examples": [{"image": [0] * 10}]}, "takes 784"),
    ({"examples": [{"picture": [0] * 784}]}, "unknown feature"),
    ({"examples": []}, "no examples"),
    ({"instances": [[0]]}, "'examples'"),
])
def test_rest_classify_explains_a_bad_example(served: tuple[Server, str], body: object,
                                              needle: str) -> None:
    server, _ = served
    with server.client() as c:
        r = c.post("/v1/models/mnist:classify", json=body)
    assert r.status_code == 400 and needle in r.json()["error"], r.text


def test_grpc_classify_with_the_tf_serving_stub(served: tuple[Server, str]) -> None:
    _, address = served
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "mnist"
    examples = request.input.example_list.examples
    examples.add().CopyFrom(tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[SEVEN]))})))
    examples.add().CopyFrom(tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(int64_list=tf.train.Int64List(
            value=TWO.astype(np.int64).ravel().tolist()))})))
    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Classify(request, timeout=30)
        with pytest.raises(grpc.RpcError) as bad:
            empty = classification_pb2.ClassificationRequest()
            empty.model_spec.name = "mnist"
            stub.Classify(empty, timeout=30)
    rows = [[(c.label, c.score) for c in r.classes] for r in response.result.classifications]
    check_ranked(rows[0], "7")
    check_ranked(rows[1], "2")
    assert response.model_spec.version.value == NEWEST
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_tritonclient_class_count(served: tuple[Server, str], protocol: str) -> None:
    """Triton's classification extension: ``class_count`` on an output gives its best
    classes as ``score:index:label``, over HTTP (JSON and binary) and gRPC."""
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http

    server, address = served
    module: Any = triton_http if protocol == "http" else triton_grpc
    client = module.InferenceServerClient(
        server.url.removeprefix("http://") if protocol == "http" else address)
    pixels = np.stack([cv2.imread(str(FIXTURES / "digits" / f), cv2.IMREAD_GRAYSCALE)
                       for f in ("7_test0.png", "2_test1.png")])[..., None]
    image = module.InferInput("image", list(pixels.shape), "UINT8")
    image.set_data_from_numpy(pixels)
    kinds = [{}, {"binary_data": True}] if protocol == "http" else [{}]
    for kind in kinds:
        wanted = module.InferRequestedOutput("probabilities", class_count=3, **kind)
        result = client.infer("mnist", [image], outputs=[wanted])
        classes = result.as_numpy("probabilities")
        assert classes.shape == (2, 3), kind
        rows = [[c.decode().split(":") for c in row] for row in classes]
        assert [row[0][1:] for row in rows] == [["7", "7"], ["2", "2"]]  # index, label
        scores = [float(c[0]) for c in rows[0]]
        assert scores == sorted(scores, reverse=True) and scores[0] > 0.9


@pytest.mark.parametrize(("parameters", "needle"), [
    ({"classification": 0}, "at least 1"), ({"classification": "3"}, "must be an integer"),
])
def test_a_bad_class_count_is_refused(served: tuple[Server, str], parameters: object,
                                      needle: str) -> None:
    server, _ = served
    body = {"inputs": [{"name": "image", "shape": [1, 28, 28, 1], "datatype": "UINT8",
                        "data": TWO.ravel().tolist()}],
            "outputs": [{"name": "probabilities", "parameters": parameters}]}
    with server.client() as c:
        r = c.post("/v2/models/mnist/infer", json=body)
    assert r.status_code == 400 and needle in r.json()["error"], r.text


def test_explain_gives_grad_cam_and_saliency_per_instance(served: tuple[Server, str]) -> None:
    """KServe's ``:explain`` verb over TF Serving-style instances."""
    server, _ = served
    both = {"instances": [{"b64": base64.b64encode(SEVEN).decode()},
                          TWO[..., None].tolist()]}
    one = {"instances": [{"b64": base64.b64encode(SEVEN).decode()}]}
    with server.client() as c:
        answer = c.post("/v1/models/mnist:explain", json=both)
        png = c.post(f"/v1/models/mnist/versions/{NEWEST}:explain", json=one,
                     headers={"accept": "image/png"})
        two_pngs = c.post("/v1/models/mnist:explain", json=both,
                          headers={"accept": "image/png"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["method"] == "grad-cam" and body["layer"].startswith("conv")
    seven, two = body["explanations"]
    assert (seven["label"], two["label"]) == ("7", "2") and seven["probability"] > 0.9
    heat = np.array(seven["heatmap"])
    assert heat.ndim == 2 and heat.max() > 0 and np.array(seven["saliency"]).shape == (28, 28)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert png.headers["x-class-index"] == "7"
    assert two_pngs.status_code == 422 and "one image" in two_pngs.json()["error"]


def test_explain_by_integrated_gradients(served: tuple[Server, str]) -> None:
    """``"method": "integrated-gradients"``: each pixel's share of log p(class), from a
    black picture to this one; the shares add up to about the change of log p."""
    server, _ = served
    seven = {"b64": base64.b64encode(SEVEN).decode()}
    body = {"method": "integrated-gradients", "instances": [seven]}
    with server.client() as c:
        answer = c.post("/v1/models/mnist:explain", json=body)
        png = c.post("/v1/models/mnist:explain", json=body, headers={"accept": "image/png"})
        probs = c.post("/v1/models/mnist:predict", json={"instances": [
            seven, np.zeros((28, 28, 1), np.uint8).tolist()]}).json()["predictions"]
        unknown = c.post("/v1/models/mnist:explain", json={**body, "method": "lime"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["method"], body["steps"], body["baseline"]) == ("integrated-gradients", 32,
                                                                 "black")
    explained = body["explanations"][0]
    assert explained["label"] == "7"
    attributions = np.array(explained["attributions"])
    assert attributions.shape == (28, 28)
    change = np.log(probs[0][7]) - np.log(probs[1][7])
    assert attributions.sum() == pytest.approx(change, rel=0.1)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert unknown.status_code == 400 and "integrated-gradients" in unknown.json()["error"]
