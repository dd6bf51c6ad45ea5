"""The gRPC faces with the real, unmodified clients: TensorFlow Serving's
PredictionServiceStub (tensorflow-serving-api) and tritonclient.grpc."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
import tensorflow as tf
import tritonclient.grpc as triton
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tritonclient.utils import InferenceServerException

from cnnlab.layout import list_versions
from tests.helpers import BUNDLED_MODELS, Server, fixture_images, free_port, run_server

NEWEST = list_versions(BUNDLED_MODELS / "mnist")[-1]  # what the "latest" policy serves

DIGITS = fixture_images("digits")
KEY = "grpc-key"
AUTH = (("x-api-key", KEY),)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    port = free_port()
    with run_server(BUNDLED_MODELS, tmp_path_factory.mktemp("grpc"), grpc_port=str(port),
                    api_key=KEY, workers="2") as server:
        yield server, f"127.0.0.1:{port}"


def pixels() -> tuple[np.ndarray, list[int]]:
    """The fixture digits as one uint8 batch [10, 28, 28, 1], and their labels."""
    batch = np.stack([cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_GRAYSCALE)
                      for _, d in DIGITS])[..., None]
    return batch, [label for label, _ in DIGITS]


def predict(address: str, tensor: tf.Tensor | np.ndarray, version: int | None = None,
            metadata: tuple[tuple[str, str], ...] = AUTH, name: str = "mnist") -> object:
    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        if version is not None:
            request.model_spec.version.value = version
        request.inputs["image"].CopyFrom(tf.make_tensor_proto(tensor))
        return stub.Predict(request, timeout=30, metadata=metadata)


def test_tf_serving_stub_classifies_pixels_and_encoded_pictures(
        served: tuple[Server, str]) -> None:
    _, address = served
    batch, labels = pixels()
    by_pixels = predict(address, batch)
    by_png = predict(address, np.array([d for _, d in DIGITS], dtype=object))
    many = predict(address, np.tile(batch, (7, 1, 1, 1))[:64])
    for response in (by_pixels, by_png):
        probs = tf.make_ndarray(response.outputs["probabilities"])  # type: ignore[attr-defined]
        assert probs.argmax(1).tolist() == labels
    assert tf.make_ndarray(many.outputs["probabilities"]).shape == (64, 10)  # type: ignore[attr-defined]
    assert by_pixels.model_spec.version.value == NEWEST  # type: ignore[attr-defined]


def test_tf_serving_version_metadata_and_status(served: tuple[Server, str]) -> None:
    _, address = served
    batch, _ = pixels()
    assert predict(address, batch[:1], version=NEWEST).model_spec.version.value == NEWEST  # type: ignore[attr-defined]
    with grpc.insecure_channel(address) as channel:
        meta = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
            get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec={"name": "mnist"}, metadata_field=["signature_def"]),
            metadata=AUTH, timeout=30)
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "mnist"}),
            metadata=AUTH, timeout=30)
    defs = get_model_metadata_pb2.SignatureDefMap()
    meta.metadata["signature_def"].Unpack(defs)
    assert {"serving_default", "activations"} <= set(defs.signature_def)
    assert defs.signature_def["serving_default"].inputs["image"].dtype == tf.uint8.as_datatype_enum
    [row] = status.model_version_status
    assert row.version == NEWEST and row.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"name": "nope"}, grpc.StatusCode.NOT_FOUND),
    ({"version": 99}, grpc.StatusCode.NOT_FOUND),
    ({"metadata": ()}, grpc.StatusCode.UNAUTHENTICATED),
    ({"tensor": np.zeros((1, 5, 5, 1), np.uint8)}, grpc.StatusCode.INVALID_ARGUMENT),
    ({"tensor": np.full((1, 28, 28, 1), 300.0, np.float32)}, grpc.StatusCode.INVALID_ARGUMENT),
    ({"tensor": np.array([b"not a picture"], dtype=object)}, grpc.StatusCode.INVALID_ARGUMENT),
])
def test_tf_serving_errors_have_the_right_codes(served: tuple[Server, str],
                                                kwargs: dict[str, object],
                                                code: grpc.StatusCode) -> None:
    _, address = served
    args: dict[str, object] = {"tensor": pixels()[0][:1], **kwargs}
    with pytest.raises(grpc.RpcError) as err:
        predict(address, **args)  # type: ignore[arg-type]
    assert err.value.code() == code, err.value.details()  # type: ignore[attr-defined]


def test_tritonclient_grpc_infers_unchanged(served: tuple[Server, str]) -> None:
    _, address = served
    c = triton.InferenceServerClient(address)
    headers = {"x-api-key": KEY}
    assert c.is_server_live(headers=headers) and c.is_model_ready("mnist", headers=headers)
    assert c.get_model_metadata("mnist", headers=headers).inputs[0].name == "image"
    batch, labels = pixels()
    for images in (batch, np.tile(batch, (7, 1, 1, 1))[:64]):
        inp = triton.InferInput("image", list(images.shape), "UINT8")
        inp.set_data_from_numpy(images)
        result = c.infer("mnist", [inp], headers=headers, request_id="g1")
        probs = result.as_numpy("probabilities")
        assert probs.shape == (len(images), 10)
        assert probs.argmax(1).tolist()[:10] == labels
    index = c.get_model_repository_index(headers=headers, as_json=True)["models"]
    assert {"name": "mnist", "version": str(NEWEST), "state": "READY"} in [
        {k: m[k] for k in ("name", "version", "state")} for m in index if "version" in m]
    with pytest.raises(InferenceServerException, match="not found"):
        c.infer("nope", [inp], headers=headers)
    with pytest.raises(InferenceServerException, match="override config"):
        c.load_model("mnist", headers=headers, config='{"backend": "python"}')
    with pytest.raises(InferenceServerException, match="API key"):
        c.is_server_live()
    metrics = served[0].client().get("/metrics", headers={"X-API-Key": KEY}).text
    assert re.search(r'cnnlab_requests_total\{method="gRPC",model="",route="ModelInfer",'
                     r'status="OK",version=""\} [1-9]', metrics), metrics[-2000:]


def test_grpc_is_off_with_port_0(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path) as server:
        assert "gRPC on" not in server.logs()
