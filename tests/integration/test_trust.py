"""The out-of-distribution score and calibrated probabilities on every face: uploads
always carry ``ood_score``/``in_distribution``; TF Serving (REST and gRPC) and the V2
protocol (REST and gRPC, tritonclient) return them as outputs a client asks for by name.

A tiny version fitted on dim noisy pictures (``tests.helpers.tiny_trust``) tells them from
bright ones; the bundled digit model keeps a scanned digit (dark on white, any size) in
distribution and refuses noise and clothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.helpers import (
    BUNDLED_MODELS,
    FIXTURES,
    Server,
    dim_pictures,
    export_tiny,
    free_port,
    png,
    run_server,
)

DIM = dim_pictures(20, seed=7)  # like the training pictures
BRIGHT = np.random.default_rng(8).integers(200, 256, (4, 28, 28, 1), dtype=np.uint8)
BATCH = np.concatenate([DIM, BRIGHT])
WANTED = ["ood_score", "in_distribution"]


@pytest.fixture(scope="module")
def trusted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    repo = tmp_path_factory.mktemp("trusted")
    export_tiny(repo / "tiny", version=1, trusted=True)
    port = free_port()
    with run_server(repo, tmp_path_factory.mktemp("trusted-run"),
                    grpc_port=str(port)) as server:
        yield server, f"127.0.0.1:{port}"


def check_verdicts(scores: np.ndarray, inside: np.ndarray, threshold: float) -> None:
    """The dim pictures (mostly) in, the bright ones out, and the verdict is the score
    against the version's threshold."""
    assert scores.shape == inside.shape == (len(BATCH),) and inside.dtype == np.bool_
    np.testing.assert_array_equal(inside, scores <= np.float32(threshold))
    assert inside[:len(DIM)].sum() >= 15 and not inside[len(DIM):].any()


def threshold_of(server: Server) -> float:
    summary = httpx.get(f"{server.url}/api/models/tiny").json()
    assert summary["ood"]["method"].startswith("mahalanobis feature ensemble")
    assert summary["calibration"]["temperature"] > 0
    return float(summary["ood"]["threshold"])


def test_v2_rest_and_grpc_return_the_score_when_asked(trusted: tuple[Server, str]) -> None:
    server, address = trusted
    threshold = threshold_of(server)
    rest = triton_http.InferenceServerClient(server.url.removeprefix("http://"))
    inp = triton_http.InferInput("image", list(BATCH.shape), "UINT8")
    inp.set_data_from_numpy(BATCH)
    asked = rest.infer("tiny", [inp], outputs=[triton_http.InferRequestedOutput(n)
                                               for n in WANTED])
    check_verdicts(asked.as_numpy("ood_score"), asked.as_numpy("in_distribution"), threshold)
    assert asked.as_numpy("probabilities") is None  # only what was asked for
    plain = rest.infer("tiny", [inp])  # no outputs named: the probabilities alone
    assert [o["name"] for o in plain.get_response()["outputs"]] == ["probabilities"]
    meta = rest.get_model_metadata("tiny")
    assert {o["name"]: o["datatype"] for o in meta["outputs"]} == {
        "probabilities": "FP32", "ood_score": "FP32", "in_distribution": "BOOL"}

    remote = triton_grpc.InferenceServerClient(address)
    ginp = triton_grpc.InferInput("image", list(BATCH.shape), "UINT8")
    ginp.set_data_from_numpy(BATCH)
    by_grpc = remote.infer("tiny", [ginp], outputs=[triton_grpc.InferRequestedOutput(n)
                                                    for n in WANTED])
    np.testing.assert_allclose(by_grpc.as_numpy("ood_score"), asked.as_numpy("ood_score"),
                               rtol=1e-5)
    np.testing.assert_array_equal(by_grpc.as_numpy("in_distribution"),
                                  asked.as_numpy("in_distribution"))


def test_tf_serving_rest_and_grpc_filter_outputs(trusted: tuple[Server, str]) -> None:
    server, address = trusted
    threshold = threshold_of(server)
    body = {"instances": BATCH.tolist(), "output_filter": WANTED}
    rows = httpx.post(f"{server.url}/v1/models/tiny:predict", json=body).json()["predictions"]
    assert set(rows[0]) == set(WANTED)
    check_verdicts(np.array([r["ood_score"] for r in rows], np.float32),
                   np.array([r["in_distribution"] for r in rows]), threshold)
    plain = httpx.post(f"{server.url}/v1/models/tiny:predict",
                       json={"instances": DIM[:2].tolist()}).json()["predictions"]
    assert np.array(plain).shape == (2, 10)  # as before: the probabilities, row by row
    bad = httpx.post(f"{server.url}/v1/models/tiny:predict",
                     json={"instances": DIM[:1].tolist(), "output_filter": ["logits"]})
    assert bad.status_code == 400 and "unknown output 'logits'" in bad.json()["error"]

    with grpc.insecure_channel(address) as channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "tiny"
        request.inputs["image"].CopyFrom(tf.make_tensor_proto(BATCH))
        request.output_filter.extend(WANTED)
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30)
    assert sorted(response.outputs) == sorted(WANTED)
    check_verdicts(tf.make_ndarray(response.outputs["ood_score"]),
                   tf.make_ndarray(response.outputs["in_distribution"]), threshold)


def test_uploads_carry_the_score_and_the_verdict(trusted: tuple[Server, str]) -> None:
    server, _ = trusted
    threshold = threshold_of(server)
    files = [("file", (f"{i}.png", png(p[..., 0]), "image/png")) for i, p in enumerate(BATCH)]
    answer = httpx.post(f"{server.url}/api/models/tiny/predict", files=files,
                        params={"center": "false", "invert": "off"}).json()
    rows = answer["predictions"]
    check_verdicts(np.array([r["ood_score"] for r in rows], np.float32),
                   np.array([r["in_distribution"] for r in rows]), threshold)


def test_a_version_without_a_score_answers_null(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path) as server:
        files = {"file": ("d.png", png(DIM[0, ..., 0]), "image/png")}
        row = httpx.post(f"{server.url}/api/models/tiny/predict",
                         files=files).json()["predictions"][0]
        assert row["ood_score"] is None and row["in_distribution"] is None
        asked = httpx.post(f"{server.url}/v1/models/tiny:predict",
                           json={"instances": DIM[:1].tolist(), "output_filter": WANTED})
        assert asked.status_code == 400 and "unknown output 'ood_score'" in asked.text


def _scanned(digit: np.ndarray, side: int) -> bytes:
    """An MNIST digit as a scan would show it: dark ink on white paper, ``side`` px."""
    big = cv2.resize(255 - digit, (side, side), interpolation=cv2.INTER_CUBIC)
    return png(np.pad(big, side // 4, constant_values=255))


def test_the_digit_model_keeps_scanned_digits_and_refuses_the_rest(
        bundled_server: Server) -> None:
    """Digits scanned dark on white, at any size, are in distribution as the MNIST
    pictures themselves are (the same preprocessing comes first; the threshold keeps 95 %
    of held-out digits and their copies as users send them); noise and most clothing are
    out."""
    digits = [(p.name, cv2.imread(str(p), cv2.IMREAD_GRAYSCALE))
              for p in sorted((FIXTURES / "digits").glob("*.png"))]
    sides = (56, 200)
    noise = np.random.default_rng(3).integers(0, 256, (60, 60), dtype=np.uint8)
    files = [("file", (name, png(d), "image/png")) for name, d in digits]
    files += [("file", (f"{side}-{name}", _scanned(d, side), "image/png"))
              for name, d in digits for side in sides]
    garments = sorted((FIXTURES / "fashion").glob("*.png"))
    files += [("file", ("noise.png", png(noise), "image/png"))]
    files += [("file", (f"garment-{p.name}", p.read_bytes(), "image/png")) for p in garments]
    rows = httpx.post(f"{bundled_server.url}/api/models/mnist/predict", files=files,
                      timeout=60).json()["predictions"]
    by_name = {r["filename"]: r for r in rows}
    for prefix in ("", *(f"{side}-" for side in sides)):
        verdicts = [by_name[prefix + name]["in_distribution"] for name, _ in digits]
        assert sum(verdicts) >= 8, (prefix, verdicts)
        for name, _ in digits:  # and still read right
            assert by_name[prefix + name]["top_k"][0]["label"] == name[0]
    assert not by_name["noise.png"]["in_distribution"]
    # one garment of each class: most refused (docs/trust.md: 30 % of Fashion-MNIST's
    # test garments pass the digit model's threshold, set to keep what users send)
    refused = [not by_name[f"garment-{p.name}"]["in_distribution"] for p in garments]
    assert sum(refused) >= 6, refused


@pytest.mark.parametrize("model", ["mnist", "fashion_mnist"])
def test_the_summary_gives_the_figures_measured_out_of_sample(bundled_server: Server,
                                                              model: str) -> None:
    """The bundled versions fitted their temperature and threshold on a validation split
    of the training set and were measured on the test set; the summary says so and gives
    the figures part by part (as stored, uploaded, sent, printed)."""
    with bundled_server.client() as c:
        summary = c.get(f"/api/models/{model}").json()
    newest = max(v["version"] for v in summary["versions"])
    metadata = json.loads((BUNDLED_MODELS / model / str(newest) / "metadata.json")
                          .read_text())
    assert metadata["hyperparameters"]["validation"] not in ("test", "none")
    for part in ("calibration", "ood"):
        assert summary[part]["measured_on"].startswith("the test set")
        assert "validation split" in summary[part]["fitted_on" if part == "calibration"
                                                   else "threshold_fitted_on"]
    # the fit's figure for the test pictures as stored is the SavedModel's own test ECE
    assert summary["calibration"]["ece_after_by_part"]["as stored"] == pytest.approx(
        metadata["test_ece"], abs=1e-5)
    assert summary["calibration"]["ece_after_by_part"] == pytest.approx(
        metadata["calibration"]["ece_after_by_part"])
    assert summary["ood"]["accepted_by_part"] == pytest.approx(
        metadata["ood"]["accepted_by_part"])
    assert set(summary["ood"]["accepted_by_part"]) >= {"as stored", "as sent"}
