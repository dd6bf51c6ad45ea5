"""The V2 face with a standard, unmodified Open Inference Protocol client."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.helpers import Server, fixture_images, run_server

DIGITS = fixture_images("digits")


def client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"))


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_infers_unchanged(bundled_server: Server, binary: bool) -> None:
    c = client(bundled_server)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("mnist")
    meta = c.get_model_metadata("mnist")
    assert meta["inputs"][0]["name"] == "image"
    batch = np.stack([cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_GRAYSCALE)
                      for _, d in DIGITS])[..., None]
    inp = triton.InferInput("image", list(batch.shape), "UINT8")
    inp.set_data_from_numpy(batch, binary_data=binary)
    out = triton.InferRequestedOutput("probabilities", binary_data=binary)
    result = c.infer("mnist", [inp], outputs=[out], request_id="r1")
    probs = result.as_numpy("probabilities")
    assert probs.shape == (10, 10)
    assert probs.argmax(1).tolist() == [label for label, _ in DIGITS]
    assert result.get_response()["id"] == "r1"


def test_tritonclient_sees_clear_errors(bundled_server: Server) -> None:
    c = client(bundled_server)
    assert not c.is_model_ready("nope")
    inp = triton.InferInput("image", [1, 28, 28, 1], "UINT8")
    inp.set_data_from_numpy(np.zeros((1, 28, 28, 1), np.uint8))
    with pytest.raises(InferenceServerException, match="model 'nope' not found"):
        c.infer("nope", [inp])


KEY = {"X-API-Key": "v2-key"}


def test_tritonclient_manages_the_repository(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path, api_key="v2-key", workers="2") as server:
        c = client(server)
        index = c.get_model_repository_index(headers=KEY)
        c.unload_model("tiny", headers=KEY)
        ready_after_unload = c.is_model_ready("tiny", headers=KEY)
        unloaded = c.get_model_repository_index(headers=KEY)
        c.load_model("tiny", headers=KEY)
        ready_after_load = c.is_model_ready("tiny", headers=KEY)
        with pytest.raises(InferenceServerException, match="API key"):
            c.unload_model("tiny")  # admin needs the key
        with pytest.raises(InferenceServerException, match="not found"):
            c.load_model("nope", headers=KEY)
        with pytest.raises(InferenceServerException, match="override config"):
            c.load_model("tiny", headers=KEY, config='{"backend": "python"}')
    assert index == [{"name": "tiny", "version": "1", "state": "READY", "reason": ""}]
    assert ready_after_unload is False and ready_after_load is True  # on every worker
    assert {"name": "tiny", "state": "UNAVAILABLE", "reason": "unloaded"} in unloaded


def test_tritonclient_reads_statistics(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path, workers="2") as server:
        c = client(server)
        inp = triton.InferInput("image", [4, 28, 28, 1], "UINT8")
        inp.set_data_from_numpy(np.zeros((4, 28, 28, 1), np.uint8))
        [idle] = c.get_inference_statistics("tiny")["model_stats"]
        started_ms = time.time() * 1000
        for _ in range(3):
            c.infer("tiny", [inp])
        ended_ms = time.time() * 1000
        [stats] = c.get_inference_statistics("tiny")["model_stats"]
        [same] = c.get_inference_statistics("tiny", "1")["model_stats"]
        everything = c.get_inference_statistics()["model_stats"]
    assert stats["name"] == "tiny" and stats["version"] == "1"
    assert stats["inference_count"] == 12  # images, over both workers
    assert 1 <= stats["execution_count"] <= 3  # batches
    assert stats["inference_stats"]["queue"]["count"] == 3  # requests
    assert stats["inference_stats"]["compute_infer"]["ns"] > 0
    assert same == stats and everything == [stats]
    # when the last batch ran (ms since the epoch); none before the first request
    assert idle.get("last_inference", 0) == 0
    assert started_ms <= int(stats["last_inference"]) <= ended_ms
