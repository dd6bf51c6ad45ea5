"""The three faces over real HTTP against the bundled, really trained models."""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest

from tests.helpers import Server, fixture_images, png

DIGITS = fixture_images("digits")
FASHION = fixture_images("fashion")


def pixels(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)


@pytest.mark.parametrize(("label", "data"), DIGITS, ids=[str(d[0]) for d in DIGITS])
def test_upload_classifies_real_test_digits(bundled_server: Server, label: int,
                                            data: bytes) -> None:
    with bundled_server.client() as c:
        r = c.post("/api/models/mnist/predict", files={"file": ("d.png", data, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "mnist"
    assert body["predictions"][0]["top_k"][0]["class_index"] == label
    assert sum(body["predictions"][0]["probabilities"]) == pytest.approx(1, abs=1e-4)


def test_many_files_in_one_multipart_keep_their_order(bundled_server: Server) -> None:
    files = [("file", (f"{label}.png", data, "image/png")) for label, data in DIGITS]
    with bundled_server.client() as c:
        r = c.post("/api/models/mnist/predict?top_k=3", files=files)
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert [p["filename"] for p in preds] == [f"{label}.png" for label, _ in DIGITS]
    assert [p["top_k"][0]["class_index"] for p in preds] == [label for label, _ in DIGITS]
    assert all(len(p["top_k"]) == 3 for p in preds)


def test_fashion_items_as_raw_bodies(bundled_server: Server) -> None:
    correct = 0
    with bundled_server.client() as c:
        names = c.get("/api/models/fashion_mnist").json()["class_names"]
        for label, data in FASHION:
            r = c.post("/api/models/fashion_mnist/predict", content=data,
                       headers={"content-type": "image/png"})
            assert r.status_code == 200
            top = r.json()["predictions"][0]["top_k"][0]
            correct += top["class_index"] == label
            assert top["label"] == names[top["class_index"]]
    assert names[0] == "T-shirt/top" and names[9] == "Ankle boot"
    assert correct >= 9  # a 93 %-accurate model; these ten are the first of each class


def test_dark_digit_on_white_paper_photo(bundled_server: Server) -> None:
    label, data = DIGITS[3]
    paper = 255 - cv2.resize(pixels(data), (168, 168), interpolation=cv2.INTER_CUBIC)
    paper = cv2.copyMakeBorder(paper, 40, 90, 120, 30, cv2.BORDER_CONSTANT, value=255)
    _, jpeg = cv2.imencode(".jpg", cv2.cvtColor(paper, cv2.COLOR_GRAY2BGR))
    with bundled_server.client() as c:
        r = c.post("/api/models/mnist/predict?include_input=true", content=jpeg.tobytes(),
                   headers={"content-type": "image/jpeg"})
    assert r.status_code == 200
    pred = r.json()["predictions"][0]
    assert pred["inverted"] and pred["centered"]
    assert pred["original_size"] == [318, 298]
    assert pred["top_k"][0]["class_index"] == label
    seen = pixels(base64.b64decode(pred["input_png"]))
    assert seen.shape == (28, 28) and seen[0, 0] == 0  # light ink on black, like MNIST


def test_tf_serving_row_columnar_and_b64(bundled_server: Server) -> None:
    batch = np.stack([pixels(d) for _, d in DIGITS])[..., None]
    labels = [label for label, _ in DIGITS]
    with bundled_server.client() as c:
        row = c.post("/v1/models/mnist:predict", json={"instances": batch.tolist()})
        col = c.post("/v1/models/mnist:predict", json={"inputs": {"image": batch.tolist()}})
        b64 = c.post("/v1/models/mnist:predict", json={"signature_name": "serving_default",
                     "instances": [{"b64": base64.b64encode(d).decode()} for _, d in DIGITS]})
    assert row.status_code == col.status_code == b64.status_code == 200
    assert np.argmax(row.json()["predictions"], 1).tolist() == labels
    assert np.argmax(col.json()["outputs"], 1).tolist() == labels
    assert np.argmax(b64.json()["predictions"], 1).tolist() == labels


def test_tf_serving_b64_mixed_with_pixels_and_other_signatures(bundled_server: Server) -> None:
    (l0, d0), (l1, d1) = DIGITS[:2]
    mixed = [{"b64": base64.b64encode(d0).decode()}, pixels(d1)[..., None].tolist()]
    with bundled_server.client() as c:
        predicted = c.post("/v1/models/mnist:predict", json={"instances": mixed})
        b64 = c.post("/v1/models/mnist:predict", json={
            "signature_name": "activations", "instances": [{"b64": base64.b64encode(d).decode()}
                                                          for d in (d0, d1)]})
        rows = c.post("/v1/models/mnist:predict", json={
            "signature_name": "activations", "instances": [pixels(d)[..., None].tolist()
                                                          for d in (d0, d1)]})
    assert predicted.status_code == b64.status_code == rows.status_code == 200, predicted.text
    assert np.argmax(predicted.json()["predictions"], 1).tolist() == [l0, l1]
    from_b64, from_rows = b64.json()["predictions"], rows.json()["predictions"]
    assert len(from_b64) == len(from_rows) == 2
    assert set(from_b64[0]) == set(from_rows[0]) and len(from_b64[0]) > 1


def test_tf_serving_status_and_metadata(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        status = c.get("/v1/models/mnist").json()["model_version_status"]
        version = status[0]["version"]
        one = c.get(f"/v1/models/mnist/versions/{version}")
        meta = c.get("/v1/models/mnist/metadata").json()
        missing = c.get("/v1/models/mnist/versions/999")
    assert status[0]["state"] == "AVAILABLE"
    assert status[0]["status"] == {"error_code": "OK", "error_message": ""}
    assert one.status_code == 200
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["image"]["dtype"] == "DT_UINT8"
    assert [d["size"] for d in sig["inputs"]["image"]["tensor_shape"]["dim"]] == [
        "-1", "28", "28", "1"]
    assert {"activations", "gradcam", "filters"} <= set(
        meta["metadata"]["signature_def"]["signature_def"])
    assert missing.status_code == 404 and "999" in missing.json()["error"]


def test_v2_infer_json_and_metadata(bundled_server: Server) -> None:
    batch = np.stack([pixels(d) for _, d in DIGITS[:4]])[..., None]
    req = {"id": "abc", "inputs": [{"name": "image", "shape": list(batch.shape),
                                    "datatype": "UINT8", "data": batch.ravel().tolist()}]}
    with bundled_server.client() as c:
        r = c.post("/v2/models/mnist/infer", json=req)
        meta = c.get("/v2/models/mnist").json()
        ready = c.get("/v2/models/mnist/ready")
        server = c.get("/v2").json()
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "abc" and body["model_name"] == "mnist"
    out = body["outputs"][0]
    assert out["shape"] == [4, 10] and out["datatype"] == "FP32"
    assert np.argmax(np.reshape(out["data"], out["shape"]), 1).tolist() == [
        label for label, _ in DIGITS[:4]]
    assert meta["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, 28, 28, 1]}]
    assert ready.status_code == 200
    assert "binary_tensor_data" in server["extensions"]


def test_v2_binary_tensor_extension(bundled_server: Server) -> None:
    batch = np.stack([pixels(d) for _, d in DIGITS[:2]])[..., None]
    header = json.dumps({"inputs": [{"name": "image", "shape": list(batch.shape),
                                     "datatype": "UINT8",
                                     "parameters": {"binary_data_size": batch.nbytes}}],
                         "outputs": [{"name": "probabilities",
                                      "parameters": {"binary_data": True}}]}).encode()
    with bundled_server.client() as c:
        r = c.post("/v2/models/mnist/infer", content=header + batch.tobytes(),
                   headers={"Inference-Header-Content-Length": str(len(header)),
                            "content-type": "application/octet-stream"})
    assert r.status_code == 200
    n = int(r.headers["inference-header-content-length"])
    meta = json.loads(r.content[:n])
    probs = np.frombuffer(r.content[n:], np.float32).reshape(meta["outputs"][0]["shape"])
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == probs.nbytes
    assert probs.argmax(1).tolist() == [label for label, _ in DIGITS[:2]]


@pytest.mark.parametrize(("method", "url", "kwargs", "status", "needle"), [
    ("post", "/api/models/nope/predict", {"content": b"x"}, 404, "'nope'"),
    ("post", "/api/models/mnist/predict?version=999", {"content": png(np.zeros((28, 28),
     np.uint8)), "headers": {"content-type": "image/png"}}, 404, "999"),
    ("post", "/api/models/mnist/predict", {"json": {"a": 1}}, 415, "content type"),
    ("post", "/api/models/mnist/predict?top_k=0", {"content": b"x"}, 422, "top_k"),
    ("get", "/v1/models/nope", {}, 404, "'nope'"),
    ("post", "/v1/models/mnist:predict", {"content": b"{not json"}, 400, "not valid JSON"),
    ("post", "/v1/models/mnist:predict", {"json": {"instances": [[1, 2]]}}, 400, "shape"),
    ("post", "/v1/models/mnist:predict", {"json": {"instances": [[[300] * 28] * 28]}}, 400,
     "0..255"),
    ("post", "/v1/models/mnist:predict", {"json": {"instances": ["abc"]}}, 400, "numbers"),
    ("post", "/v1/models/mnist:predict", {"json": {"foo": 1}}, 400, "instances"),
    ("post", "/v1/models/mnist:predict", {"json": {"signature_name": "x", "instances": []}},
     400, "'x'"),
    ("get", "/v2/models/nope", {}, 404, "'nope'"),
    ("post", "/v2/models/mnist/infer", {"json": {"inputs": [{"name": "pixels", "shape": [1],
     "datatype": "UINT8", "data": [1]}]}}, 400, "'pixels'"),
    ("post", "/v2/models/mnist/infer", {"json": {"inputs": [{"name": "image",
     "shape": [1, 28, 28, 1], "datatype": "UINT8", "data": [1, 2]}]}}, 400, "784 expected"),
    ("get", "/no/such/route", {}, 404, "no such route"),
])
def test_errors_have_one_json_shape(bundled_server: Server, method: str, url: str,
                                    kwargs: dict[str, object], status: int, needle: str) -> None:
    with bundled_server.client() as c:
        r = getattr(c, method)(url, **kwargs)
    assert r.status_code == status, r.text
    assert list(r.json()) == ["error"]
    assert needle in r.json()["error"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_request_id_is_echoed_or_made(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        given = c.get("/health/live", headers={"X-Request-ID": "my-id-123"})
        made = c.get("/health/live")
    assert given.headers["x-request-id"] == "my-id-123"
    assert len(made.headers["x-request-id"]) == 32


def test_health_and_metrics(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        c.post("/api/models/mnist/predict", content=DIGITS[0][1],
               headers={"content-type": "image/png"})
        ready = c.get("/health/ready")
        v2_ready = c.get("/v2/health/ready")
        text = c.get("/metrics").text
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert {"mnist", "fashion_mnist"} <= set(ready.json()["models"])
    assert v2_ready.status_code == 200
    assert 'cnnlab_requests_total{method="POST",model="mnist",route="/api/models/{name}/predict"' \
        in text
    for name in ("cnnlab_request_duration_seconds_bucket", "cnnlab_batch_size_count",
                 "cnnlab_queue_depth", "cnnlab_model_load_seconds",
                 "cnnlab_model_warmup_seconds"):
        assert name in text
