"""The loop from traffic to a new version: the bundled digit model serves a few hundred
uploads with capture on, a client labels them, ``python -m training captures export``
writes them as a dataset, ``train --init-from ... --extra-data`` fine-tunes the served
version for one epoch, and the service serves what it published."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import httpx
import numpy as np

from cnnlab.layout import list_versions
from tests.helpers import BUNDLED_MODELS, FIXTURES, ROOT, png, run_server
from tests.training.test_data import make_dataset_dir
from training import data

PICTURES = 200


def digits() -> list[tuple[int, np.ndarray]]:
    return [(int(p.name[0]), cv2.imread(str(p), cv2.IMREAD_GRAYSCALE))
            for p in sorted((FIXTURES / "digits").glob("*.png"))]


def handwritten(n: int, seed: int = 0) -> list[tuple[int, bytes]]:
    """``n`` variations of the fixture digits (shifted, scaled, turned), as uploads."""
    rng = np.random.default_rng(seed)
    base = digits()
    out = []
    for i in range(n):
        label, gray = base[i % len(base)]
        turn = cv2.getRotationMatrix2D((14, 14), rng.uniform(-15, 15), rng.uniform(0.8, 1.1))
        turn[:, 2] += rng.uniform(-2, 2, 2)
        out.append((label, png(cv2.warpAffine(gray, turn, (28, 28)))))
    return out


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_captured_and_labelled_uploads_fine_tune_a_new_version(tmp_path: Path) -> None:
    models = tmp_path / "models"
    served = list_versions(BUNDLED_MODELS / "mnist")[-1]
    shutil.copytree(BUNDLED_MODELS / "mnist" / str(served), models / "mnist" / str(served))
    store = tmp_path / "captures"
    uploads = handwritten(PICTURES)
    with run_server(models, tmp_path, capture_rate="1", capture_dir=str(store)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as c:
        for start in range(0, PICTURES, 20):
            part = uploads[start:start + 20]
            r = c.post("/api/models/mnist/predict",
                       files=[("file", (f"{i}.png", blob, "image/png"))
                              for i, (_, blob) in enumerate(part)])
            assert r.status_code == 200
            rid = r.headers["x-prediction-id"]  # (sent below under its older name)
            for position, (label, _) in enumerate(part):
                given = c.post("/api/models/mnist/feedback", json={
                    "request_id": rid, "position": position, "label": str(label)})
                if given.status_code == 404:  # not written yet: the writer is asynchronous
                    given = _retry(c, rid, position, label)
                assert given.status_code == 200, given.text
        summary = c.get("/api/models/mnist/feedback").json()["versions"]
        assert summary[0]["labelled"] == PICTURES

    exported = tmp_path / "exported"
    done = cli("captures", "export", "--model", "mnist", "--labelled", "--to", str(exported),
               "--capture-dir", str(store))
    assert done.returncode == 0, done.stderr
    assert f"Exported {PICTURES} labelled captures of mnist" in done.stdout
    captured = data.load_idx_dir("mnist", exported)
    assert len(captured.x_train) + len(captured.x_test) == PICTURES
    assert len(captured.x_test) == PICTURES // 5

    base = make_dataset_dir(tmp_path / "base", n_train=128, n_test=64)
    done = cli("train", "mnist", "--init-from", f"mnist/{served}", "--extra-data",
               str(exported), "--epochs", "1", "--batch-size", "32", "--data-dir", str(base),
               "--validation-split", "0.25",
               "--models-dir", str(models), "--strategy", "one")
    assert done.returncode == 0, done.stderr[-3000:]
    new = served + 1
    assert f"Exported mnist version {new}" in done.stdout
    meta = json.loads((models / "mnist" / str(new) / "metadata.json").read_text())
    learned = meta["learned_from"]
    assert learned["init_from"] == f"mnist/{served}" and meta["arch"] == "strided"
    assert learned["extra_data"]["captures"] == PICTURES
    assert learned["extra_data"]["held_out_images"] == PICTURES // 5
    assert 0.0 <= learned["extra_data"]["held_out_accuracy"] <= 1.0

    with run_server(models, tmp_path) as server:
        seven = (FIXTURES / "digits" / "7_test0.png").read_bytes()
        r = httpx.post(f"{server.url}/api/models/mnist/predict",
                       files={"file": ("7.png", seven, "image/png")})
        assert r.status_code == 200 and r.json()["version"] == new


def _retry(c: httpx.Client, rid: str, position: int, label: int) -> httpx.Response:
    import time

    for _ in range(50):
        time.sleep(0.1)
        r = c.post("/api/models/mnist/feedback",
                   json={"request_id": rid, "position": position, "label": str(label)})
        if r.status_code != 404:
            return r
    return r
