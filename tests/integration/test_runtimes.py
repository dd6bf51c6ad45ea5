"""The two runtimes of predictions, through the service over the bundled models: ONNX
Runtime (``CNNLAB_RUNTIME=onnxruntime``; ``auto`` picks it on the CPU) and TensorFlow
give the same classes, probabilities within 1e-5 and the same OOD verdicts on real test
digits and garments (and on noise, which both call out of distribution); the inspection
routes stay on TensorFlow either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import BUNDLED_MODELS, Server, fixture_images, png, run_server


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    tmp = tmp_path_factory.mktemp("runtimes")
    with run_server(BUNDLED_MODELS, tmp, runtime="tensorflow") as tf_server, \
            run_server(BUNDLED_MODELS, tmp, runtime="onnxruntime") as ort_server:
        yield {"tensorflow": tf_server, "onnxruntime": ort_server}


def answers(server: Server, model: str, blobs: list[bytes]) -> list[dict[str, object]]:
    with server.client() as c:
        r = c.post(f"/api/models/{model}/predict?top_k=10", files=[
            ("file", (f"{i}.png", blob, "image/png")) for i, blob in enumerate(blobs)])
    assert r.status_code == 200, r.text
    return r.json()["predictions"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("model", "kind"), [("mnist", "digits"), ("fashion_mnist", "fashion")])
def test_both_runtimes_answer_alike(servers: dict[str, Server], model: str, kind: str,
                                    tmp_path: Path) -> None:
    real = fixture_images(kind)
    noise = [png(np.random.default_rng(i).integers(0, 256, (28, 28), np.uint8))
             for i in range(3)]
    blobs = [blob for _, blob in real] + noise
    by = {name: answers(server, model, blobs) for name, server in servers.items()}
    for a, b in zip(by["tensorflow"], by["onnxruntime"], strict=True):
        np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=1e-5)
        assert a["in_distribution"] == b["in_distribution"]
        assert abs(a["ood_score"] - b["ood_score"]) <= 1e-3 * max(1.0, abs(a["ood_score"]))
    best = [p["top_k"][0]["class_index"] for p in by["onnxruntime"]]  # type: ignore[index]
    assert best[:len(real)] == [label for label, _ in real]
    assert [p["in_distribution"] for p in by["onnxruntime"][len(real):]] == [False] * 3


def test_the_onnx_server_says_so_and_still_inspects(servers: dict[str, Server]) -> None:
    server = servers["onnxruntime"]
    assert "with ONNX Runtime" in server.logs()
    assert "with ONNX Runtime" not in servers["tensorflow"].logs()
    seven = next(blob for label, blob in fixture_images("digits") if label == 7)
    with server.client() as c:
        cam = c.post("/api/models/mnist/gradcam", content=seven,
                     headers={"content-type": "image/png"})
    assert cam.status_code == 200 and cam.json()["label"] == "7"


def test_v2_metadata_names_the_runtime(servers: dict[str, Server]) -> None:
    platforms = {}
    for name, server in servers.items():
        with server.client() as c:
            platforms[name] = c.get("/v2/models/mnist").json()["platform"]
    assert platforms == {"tensorflow": "tensorflow_savedmodel",
                         "onnxruntime": "onnxruntime_onnx"}
