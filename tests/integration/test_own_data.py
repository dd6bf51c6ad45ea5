"""Your own pictures, end to end: a folder of coloured shapes (made here with OpenCV, 64x64
RGB, three classes) is trained on for a few epochs by ``python -m training train
--data-dir``, the version serves, every route and face answers for it (image uploads,
TF Serving and V2 REST, gRPC, inspection), the OOD verdict flags noise, and captured,
labelled uploads are exported as class folders and fine-tune a new version."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
import tensorflow as tf
import tritonclient.grpc as triton
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.helpers import ROOT, SHAPES, Server, free_port, run_server, shape_picture

PNG = {"content-type": "image/png"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def encoded(bgr: np.ndarray) -> bytes:
    return cv2.imencode(".png", bgr)[1].tobytes()


def shapes(n: int, seed: int) -> list[tuple[int, np.ndarray]]:
    """``n`` new shape pictures (BGR) and their classes."""
    rng = np.random.default_rng(seed)
    return [(i % 3, shape_picture(SHAPES[i % 3], rng)) for i in range(n)]


@pytest.fixture(scope="module")
def served(shapes_models: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Server, str, Path]]:
    models, _ = shapes_models
    port = free_port()
    store = tmp_path_factory.mktemp("own-captures")
    with run_server(models, tmp_path_factory.mktemp("own-run"), grpc_port=str(port),
                    capture_rate="1", capture_dir=str(store)) as server:
        yield server, f"127.0.0.1:{port}", store


def test_training_on_a_folder_records_what_it_read(shapes_models: tuple[Path, Path]) -> None:
    models, pictures = shapes_models
    meta = json.loads((models / "shapes" / "1" / "metadata.json").read_text())
    assert meta["dataset"] == "folder" and meta["class_names"] == list(SHAPES)
    assert meta["input_shape"] == [64, 64, 3]  # size and colour read off the pictures
    assert meta["upload"] == {"invert": "off", "center": False, "resize": "stretch"}
    assert meta["data"]["train"] + int(meta["hyperparameters"]["validation"]) + \
        meta["data"]["test"] == 120
    assert meta["hyperparameters"]["data_dir"] == str(pictures)
    assert meta["calibration"]["fitted_on"].startswith("the validation split")
    assert meta["test_accuracy"] > 0.5  # three classes: chance is a third
    assert (models / "shapes" / "1" / "reports" / "filters.png").is_file()


def test_uploads_are_classified_in_colour(served: tuple[Server, str, Path]) -> None:
    server, _, _ = served
    fresh = shapes(12, seed=7)
    with server.client() as c:
        r = c.post("/api/models/shapes/predict?include_input=true", files=[
            ("file", (f"{i}.png", encoded(p), "image/png")) for i, (_, p) in enumerate(fresh)])
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    right = sum(p["top_k"][0]["label"] == SHAPES[k] for p, (k, _) in zip(got, fresh,
                                                                        strict=True))
    assert right >= 7  # of 12, chance is 4
    seen = cv2.imdecode(np.frombuffer(base64.b64decode(got[0]["input_png"]),
                                      np.uint8), cv2.IMREAD_UNCHANGED)
    assert seen.shape == (64, 64, 3)
    assert np.abs(seen.astype(int) - fresh[0][1]).mean() < 2  # the picture, in its colours
    assert not got[0]["inverted"] and not got[0]["centered"]


def test_every_inspection_route_answers(served: tuple[Server, str, Path]) -> None:
    server, _, _ = served
    blob = encoded(shapes(1, seed=3)[0][1])
    with server.client() as c:
        acts = c.post("/api/models/shapes/activations", content=blob, headers=PNG)
        grid = c.post("/api/models/shapes/activations?format=png&layers=conv1",
                      content=blob, headers=PNG)
        kernels = c.get("/api/models/shapes/filters")
        tiles = c.get("/api/models/shapes/filters?format=png")
        one = c.get("/api/models/shapes/filters?format=png&in_channel=2")
        applied = c.post("/api/models/shapes/filters/apply", content=blob, headers=PNG)
        cam = c.post("/api/models/shapes/gradcam?format=png", content=blob, headers=PNG)
        summary = c.get("/api/models/shapes/summary")
    assert acts.status_code == 200 and "conv1" in [lay["name"] for lay in acts.json()["layers"]]
    for r in (grid, tiles, one, applied, cam):
        assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    assert kernels.json()["layers"][0]["shape"][2] == 3  # the first layer reads RGB
    colour = cv2.imdecode(np.frombuffer(tiles.content, np.uint8), cv2.IMREAD_COLOR)
    gray = cv2.imdecode(np.frombuffer(one.content, np.uint8), cv2.IMREAD_COLOR)
    spread = np.ptp(colour.astype(int), axis=2)  # channels differ where a tile is coloured
    assert spread.max() > 40 and np.ptp(gray.astype(int), axis=2).max() == 0
    overlay = cv2.imdecode(np.frombuffer(cam.content, np.uint8), cv2.IMREAD_COLOR)
    assert overlay.shape[:2] == (256, 256)  # 64x64 drawn four times larger
    assert summary.json()["input_shape"] == [64, 64, 3]


def test_tensor_faces_answer_over_rest_and_grpc(served: tuple[Server, str, Path]) -> None:
    server, address, _ = served
    _, bgr = shapes(1, seed=11)[0]
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[None]
    with server.client() as c:
        v1 = c.post("/v1/models/shapes:predict", json={"instances": rgb.tolist()})
        explained = c.post("/v1/models/shapes:explain", json={"instances": rgb.tolist()})
        v2 = c.post("/v2/models/shapes/infer", json={"inputs": [{
            "name": "image", "datatype": "UINT8", "shape": list(rgb.shape),
            "data": rgb.ravel().tolist()}], "outputs": [
            {"name": "probabilities", "parameters": {"classification": 2}}]})
    assert v1.status_code == 200, v1.text
    probs = np.array(v1.json()["predictions"][0])
    assert explained.status_code == 200, explained.text
    assert np.array(explained.json()["explanations"][0]["heatmap"]).ndim == 2
    assert v2.status_code == 200, v2.text
    best = [c.split(":") for c in v2.json()["outputs"][0]["data"]]  # score:index:label
    assert len(best) == 2 and best[0][2] == SHAPES[int(np.argmax(probs))]
    with grpc.insecure_channel(address) as channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "shapes"
        request.inputs["image"].CopyFrom(tf.make_tensor_proto(rgb))
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30)
    by_grpc = tf.make_ndarray(response.outputs["probabilities"])
    np.testing.assert_allclose(by_grpc[0], probs, atol=1e-6)
    inp = triton.InferInput("image", list(rgb.shape), "UINT8")
    inp.set_data_from_numpy(rgb)
    by_v2_grpc = triton.InferenceServerClient(address).infer("shapes", [inp])
    np.testing.assert_allclose(by_v2_grpc.as_numpy("probabilities")[0], probs, atol=1e-6)


def test_the_verdict_flags_another_kind_of_picture(served: tuple[Server, str, Path]) -> None:
    server, _, _ = served
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (64, 64, 3)).astype(np.uint8) for _ in range(4)]
    ours = [p for _, p in shapes(8, seed=21)]
    with server.client() as c:
        r = c.post("/api/models/shapes/predict", files=[
            ("file", (f"{i}.png", encoded(p), "image/png")) for i, p in enumerate(noise + ours)])
    verdicts = [p["in_distribution"] for p in r.json()["predictions"]]
    assert verdicts[:4] == [False] * 4
    assert sum(verdicts[4:]) >= 6  # of 8 shapes like the training pictures


def test_captures_export_as_class_folders_and_fine_tune(
        shapes_models: tuple[Path, Path], served: tuple[Server, str, Path],
        tmp_path: Path) -> None:
    served_models, pictures = shapes_models
    models = tmp_path / "models"  # (a copy: the served directory stays as it is)
    shutil.copytree(served_models, models)
    server, _, store = served
    fresh = shapes(15, seed=31)
    with server.client() as c:
        r = c.post("/api/models/shapes/predict", files=[
            ("file", (f"{i}.png", encoded(p), "image/png")) for i, (_, p) in enumerate(fresh)])
        rid = r.headers["x-prediction-id"]
        for position, (k, _) in enumerate(fresh):
            for _ in range(100):  # the capture writer is asynchronous: wait for the row
                given = c.post("/api/models/shapes/feedback", json={
                    "request_id": rid, "position": position, "label": SHAPES[k]})
                if given.status_code != 404:
                    break
                time.sleep(0.1)
            assert given.status_code == 200, given.text
    exported = tmp_path / "exported"
    done = cli("captures", "export", "--model", "shapes", "--labelled", "--to", str(exported),
               "--capture-dir", str(store), "--models-dir", str(models))
    assert done.returncode == 0, done.stderr[-2000:]
    written = sorted(exported.glob("*/*/*.png"))
    assert len(written) == 15
    assert {p.parent.name for p in written} == set(SHAPES)
    assert {p.parent.parent.name for p in written} == {"train", "test"}
    assert cv2.imread(str(written[0]), cv2.IMREAD_UNCHANGED).shape == (64, 64, 3)

    done = cli("train", "--data-dir", str(pictures), "--init-from", "shapes/1", "--extra-data",
               str(exported), "--epochs", "1", "--batch-size", "16", "--models-dir",
               str(models), "--strategy", "one")
    assert done.returncode == 0, done.stderr[-3000:]
    meta = json.loads((models / "shapes" / "2" / "metadata.json").read_text())
    learned = meta["learned_from"]
    assert learned["init_from"] == "shapes/1"
    assert learned["extra_data"]["train_images"] + learned["extra_data"][
        "held_out_images"] == 15
    assert meta["input_shape"] == [64, 64, 3]
