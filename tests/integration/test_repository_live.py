"""Version management over real HTTP: hot reload, broken and removed versions, policy,
labels, admin auth, load shedding, an empty repository."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import Server, export_tiny, png, run_server

IMAGE = png(np.full((28, 28), 128, np.uint8))


def predict(c: httpx.Client, model: str = "tiny", **params: object) -> httpx.Response:
    return c.post(f"/api/models/{model}/predict", content=IMAGE,
                  headers={"content-type": "image/png"}, params=params)


def wait_for(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


class Traffic:
    """Requests in a loop on a background thread; records versions and failures."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.versions: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.server.client() as c:
            while not self._stop.is_set():
                r = predict(c)
                if r.status_code == 200:
                    self.versions.append(r.json()["version"])
                else:
                    self.failures.append(f"{r.status_code} {r.text}")

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    export_tiny(root / "tiny", version=1)
    return root


def test_new_broken_and_removed_versions_under_traffic(repo: Path, tmp_path: Path) -> None:
    with run_server(repo, tmp_path, poll_interval_s="0.2") as server, Traffic(server) as t:
        wait_for(lambda: len(t.versions) > 5)
        export_tiny(repo / "tiny", version=2, seed=1)          # a new version appears
        wait_for(lambda: bool(t.versions) and t.versions[-1] == 2)

        broken = tmp_path / "broken"                            # a corrupt one, published
        shutil.copytree(repo / "tiny" / "2", broken)            # whole (as the trainer does)
        (broken / "saved_model.pb").write_bytes(b"definitely not a protobuf")
        broken.rename(repo / "tiny" / "3")
        with server.client() as c:
            def version_3_ended() -> bool:  # its load has failed, not merely started
                rows = c.get("/v1/models/tiny").json()["model_version_status"]
                return any(s["version"] == "3" and s["state"] == "END" for s in rows)

            wait_for(version_3_ended)
            status = {s["version"]: s for s in
                      c.get("/v1/models/tiny").json()["model_version_status"]}
            assert "cannot load SavedModel" in status["3"]["status"]["error_message"]
            assert status["2"]["state"] == "AVAILABLE"
            assert c.get("/health/ready").status_code == 200
        n = len(t.versions)
        wait_for(lambda: len(t.versions) > n + 5)
        assert set(t.versions[n:]) == {2}                        # still served by v2

        half = repo / "tiny" / "4"                               # half-written: no .pb yet
        half.mkdir()
        (half / "variables").mkdir()
        shutil.rmtree(repo / "tiny" / "2")                       # deleted while serving
        wait_for(lambda: t.versions[-1] == 1)                    # falls back to v1
        n = len(t.versions)
        wait_for(lambda: len(t.versions) > n + 5)
    assert t.failures == []
    assert "model tiny version 3 failed to load" in server.logs()


def test_policy_all_and_labels(repo: Path, tmp_path: Path) -> None:
    export_tiny(repo / "tiny", version=2, seed=1)
    with run_server(repo, tmp_path, version_policy="all",
                    version_labels='{"tiny": {"stable": 1, "canary": 2}}') as server, \
            server.client() as c:
        assert predict(c).json()["version"] == 2
        assert predict(c, version=1).json()["version"] == 1
        assert predict(c, label="stable").json()["version"] == 1
        assert c.get("/v1/models/tiny/labels/canary").json()["model_version_status"][0][
            "version"] == "2"
        r = c.post("/v1/models/tiny/labels/stable:predict",
                   json={"instances": [[[0] * 28] * 28]})
        assert r.status_code == 200 and len(r.json()["predictions"][0]) == 10
        missing = predict(c, label="beta")
        assert missing.status_code == 404 and "'beta'" in missing.json()["error"]
        v2 = c.post("/v2/models/tiny/versions/1/infer", json={"inputs": [{
            "name": "image", "shape": [1, 28, 28, 1], "datatype": "UINT8",
            "data": [0] * 784}]})
        assert v2.json()["model_version"] == "1"


def test_latest_policy_serves_only_the_newest(repo: Path, tmp_path: Path) -> None:
    export_tiny(repo / "tiny", version=2, seed=1)
    with run_server(repo, tmp_path) as server, server.client() as c:
        assert predict(c).json()["version"] == 2
        r = predict(c, version=1)
        assert r.status_code == 404 and "no available version 1" in r.json()["error"]


def test_api_key_guards_everything_but_health(repo: Path, tmp_path: Path) -> None:
    with run_server(repo, tmp_path, api_key="s3cret") as server, server.client() as c:
        assert c.get("/health/ready").status_code == 200
        assert c.get("/v2/health/live").status_code == 200
        for r in (predict(c), c.get("/v1/models/tiny"), c.get("/v2/models/tiny"),
                  c.get("/api/models"), predict(c, api_key="wrong")):
            assert r.status_code == 401 and "API key" in r.json()["error"]
        assert c.get("/api/models", headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.get("/api/models", headers={"X-API-Key": "s3cret"}).status_code == 200
        ok = c.get("/v1/models/tiny", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert c.post("/admin/reload").status_code == 401
        unload = c.post("/admin/models/tiny/unload", headers={"X-API-Key": "s3cret"})
        assert unload.status_code == 200 and unload.json()["ready"] is False
        assert c.get("/health/ready").status_code == 503
        load = c.post("/admin/models/tiny/load", headers={"X-API-Key": "s3cret"})
        assert load.json()["ready"] is True
        label = c.put("/admin/models/tiny/labels/stable", json={"version": 1},
                      headers={"X-API-Key": "s3cret"})
        assert label.status_code == 200 and label.json()["labels"] == {"stable": 1}
        bad = c.put("/admin/models/tiny/labels/stable", json={"version": 7},
                    headers={"X-API-Key": "s3cret"})
        assert bad.status_code == 409 and "version 7" in bad.json()["error"]


def test_admin_is_off_without_a_configured_key(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path) as server, server.client() as c:
        r = c.post("/admin/reload")
    assert r.status_code == 403 and "CNNLAB_API_KEY" in r.json()["error"]


def test_full_queue_sheds_with_503_and_retry_after(tiny_repo: Path, tmp_path: Path) -> None:
    batch = {"instances": np.zeros((8, 28, 28, 1), np.uint8).tolist()}
    with run_server(tiny_repo, tmp_path, max_queue_images="8", max_batch_size="1") as server:
        results: list[httpx.Response] = []

        def fire() -> None:
            with server.client() as c:
                results.append(c.post("/v1/models/tiny:predict", json=batch))

        threads = [threading.Thread(target=fire) for _ in range(24)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        with server.client() as c:
            after = c.post("/v1/models/tiny:predict", json=batch)
            metrics = c.get("/metrics").text
    codes = sorted(r.status_code for r in results)
    shed = [r for r in results if r.status_code == 503]
    assert set(codes) == {200, 503}, codes
    assert all(r.headers["retry-after"] == "1" and "overloaded" in r.json()["error"]
               for r in shed)
    assert after.status_code == 200  # the service is fine right after
    assert 'status="503"' in metrics


def test_empty_repository_is_not_ready_until_a_model_arrives(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    with run_server(root, tmp_path, wait_ready=False, poll_interval_s="0.2") as server, \
            server.client() as c:
        r = c.get("/health/ready")
        assert r.status_code == 503 and r.json()["detail"] == "no models in the repository"
        assert c.get("/v2/health/ready").status_code == 503
        export_tiny(root / "tiny")
        wait_for(lambda: c.get("/health/ready").status_code == 200)
        assert predict(c).status_code == 200


@pytest.mark.parametrize("files", [1, 3, 12])
def test_uploads_of_any_count_are_answered_whatever_the_batch_size(
        tiny_repo: Path, tmp_path: Path, files: int) -> None:
    """A few small pictures are preprocessed when their batch forms, many (or more than a
    batch holds) before they queue: every count comes back whole and in order."""
    pictures = [png(np.full((28, 28), 20 * i, np.uint8)) for i in range(files)]
    with run_server(tiny_repo, tmp_path, max_batch_size="2") as server, \
            server.client() as c:
        r = c.post("/api/models/tiny/predict?center=false&invert=off", files=[
            ("file", (f"{i}.png", p, "image/png")) for i, p in enumerate(pictures)])
        bad = c.post("/api/models/tiny/predict", files=[
            ("file", ("a.png", pictures[0], "image/png")), ("file", ("b.png", b"xx", "image/png"))])
    assert r.status_code == 200, r.text
    assert [p["filename"] for p in r.json()["predictions"]] == [f"{i}.png" for i in range(files)]
    assert bad.status_code == 415 and "not supported" in bad.json()["error"]
