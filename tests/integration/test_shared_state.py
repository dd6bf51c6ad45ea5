"""Replicas share their state through the model repository: two independent services
(their own ports, one models directory) apply each other's labels and unloads, keep them
over restarts, and serve a version copied in non-atomically once it is complete."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from tests.helpers import Server, export_tiny, png, run_server

KEY = {"X-API-Key": "s3cret"}
POLL_S = 0.5
IMAGE = png(np.zeros((28, 28), np.uint8))


def wait_for(check: Callable[[], bool], timeout: float = 30) -> None:
    """Until ``check`` holds (the state itself, not a sign of it)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def replica(models: Path, tmp: Path, **env: str):  # type: ignore[no-untyped-def]
    """A service on its own port, reading ``models`` and its admin state there."""
    return run_server(models, tmp, api_key="s3cret", version_policy="all",
                      poll_interval_s=str(POLL_S),
                      admin_state_file=str(models / "admin-state.json"), **env)


def call(server: Server, method: str, path: str, headers: dict[str, str] = KEY,
         **kwargs: object) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=30,
                         **kwargs)  # type: ignore[arg-type]


def predicted_version(server: Server, **params: str) -> int | None:
    r = call(server, "POST", "/api/models/tiny/predict", content=IMAGE, params=params,
             headers={**KEY, "content-type": "image/png"})
    return r.json()["version"] if r.status_code == 200 else None


def summary(server: Server) -> dict[str, object]:
    return call(server, "GET", "/api/models/tiny").json()  # type: ignore[no-any-return]


def test_labels_and_unloads_reach_every_replica_and_survive_restarts(tmp_path: Path) -> None:
    models = tmp_path / "models"
    export_tiny(models / "tiny", version=1)
    export_tiny(models / "tiny", version=2, seed=1)
    with replica(models, tmp_path) as a, replica(models, tmp_path) as b:
        r = call(a, "PUT", "/admin/models/tiny/labels/canary", json={"version": 1})
        assert r.status_code == 200 and r.json()["labels"] == {"canary": 1}
        written = r.json()["admin_generation"]
        assert written >= 1
        wait_for(lambda: summary(b)["admin_generation"] == written)
        assert summary(b)["labels"] == {"canary": 1}
        assert predicted_version(b, label="canary") == 1

        r = call(b, "POST", "/admin/models/tiny/unload")
        assert r.status_code == 200 and r.json()["ready"] is False
        wait_for(lambda: summary(a)["admin_generation"] == r.json()["admin_generation"])
        wait_for(lambda: predicted_version(a) is None)  # its versions drain, then end
        assert summary(a)["ready"] is False

    with replica(models, tmp_path, wait_ready=False) as a, \
            replica(models, tmp_path, wait_ready=False) as b:
        for server in (a, b):  # still unloaded after the restart, label kept
            assert summary(server)["ready"] is False
            assert summary(server)["labels"] == {"canary": 1}
        assert call(a, "POST", "/admin/models/tiny/load").status_code == 200
        wait_for(lambda: predicted_version(b, label="canary") == 1)
        assert predicted_version(a) == 2


def test_a_version_copied_saved_model_first_serves_once_complete(tmp_path: Path) -> None:
    """``cp -r`` of a version can write saved_model.pb before variables/: the load fails
    then, and is tried again when the version's files change."""
    models = tmp_path / "models"
    export_tiny(models / "tiny", version=1)
    source = export_tiny(tmp_path / "elsewhere" / "tiny", version=2, seed=1)
    with replica(models, tmp_path) as server:
        target = models / "tiny" / "2"
        target.mkdir()
        shutil.copy(source / "saved_model.pb", target)          # the protobuf first
        wait_for(lambda: any(s["version"] == 2 and s["state"] == "END" and s["error"]
                             for s in summary(server)["versions"]))  # type: ignore[attr-defined]
        assert predicted_version(server) == 1
        for item in source.iterdir():                           # then the rest
            if item.is_dir():
                shutil.copytree(item, target / item.name)
            elif not (target / item.name).exists():
                shutil.copy(item, target)
        wait_for(lambda: predicted_version(server) == 2)
