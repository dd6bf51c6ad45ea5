"""Admin actions in any order never reach a state from which a valid action fails.

Hypothesis runs random sequences of load / unload / set label / delete label / publish a
version / delete a version against a service of two worker processes (version policy
``all``). A model of what the admin state and the disk say predicts every answer; after
each step, every worker (requests on fresh connections land on either) serves exactly
that, labels whose version is gone are kept and reported, requests through them get 409,
and nothing answers 5xx.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.helpers import FIXTURES, export_tiny, run_server

KEY = {"X-API-Key": "s3cret"}
DIGIT = (FIXTURES / "digits" / "7_test0.png").read_bytes()
LABELS = st.sampled_from(["stable", "canary"])
VERSIONS = st.integers(1, 3)
EXTRA = (2, 3)  # versions a step may publish or delete; version 1 stays (the model exists)


class AdminSequences(RuleBasedStateMachine):
    url = ""
    model_dir = Path()

    def __init__(self) -> None:
        super().__init__()
        self.enabled = True
        self.labels: dict[str, int] = {}
        self.on_disk = {1}
        self._reset()

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One request on a connection of its own (either worker may take it)."""
        with httpx.Client(base_url=self.url, timeout=60, headers=KEY) as c:
            r = c.request(method, path, **kw)
        assert r.status_code < 500, f"{method} {path}: {r.status_code} {r.text}"
        return r

    def _reset(self) -> None:
        """The service back to one version, loaded, without admin labels."""
        for label in ("stable", "canary"):
            self.call("DELETE", f"/admin/models/tiny/labels/{label}")
        for v in EXTRA:
            shutil.rmtree(self.model_dir / str(v), ignore_errors=True)
        assert self.call("POST", "/admin/models/tiny/load").status_code == 200

    def served(self) -> set[int]:
        return self.on_disk if self.enabled else set()

    @rule()
    def unload(self) -> None:
        assert self.call("POST", "/admin/models/tiny/unload").status_code == 200
        self.enabled = False

    @rule()
    def load(self) -> None:
        r = self.call("POST", "/admin/models/tiny/load")
        assert r.status_code == 200, r.text
        self.enabled = True

    @rule(label=LABELS, version=VERSIONS)
    def set_label(self, label: str, version: int) -> None:
        r = self.call("PUT", f"/admin/models/tiny/labels/{label}", json={"version": version})
        if version in self.served():
            assert r.status_code == 200, r.text
            self.labels[label] = version
        else:  # only a served version may be labelled
            assert r.status_code == 409, r.text
            assert f"version {version}" in r.json()["error"]

    @rule(label=LABELS)
    def delete_label(self, label: str) -> None:
        r = self.call("DELETE", f"/admin/models/tiny/labels/{label}")
        assert r.status_code == (200 if label in self.labels else 404), r.text
        self.labels.pop(label, None)

    @rule(version=st.sampled_from(EXTRA))
    def publish(self, version: int) -> None:
        if version not in self.on_disk:
            shutil.copytree(self.model_dir / "1", self.model_dir / str(version))
        assert self.call("POST", "/admin/reload").status_code == 200
        self.on_disk.add(version)

    @rule(version=st.sampled_from(EXTRA))
    def delete_version(self, version: int) -> None:
        shutil.rmtree(self.model_dir / str(version), ignore_errors=True)
        assert self.call("POST", "/admin/reload").status_code == 200
        self.on_disk.discard(version)

    @invariant()
    def every_worker_serves_what_the_state_says(self) -> None:
        unavailable = sorted(k for k, v in self.labels.items() if v not in self.served())
        for _ in range(6):  # fresh connections: both workers answer some
            summary = self.call("GET", "/api/models/tiny").json()
            available = {v["version"] for v in summary["versions"]
                         if v["state"] == "AVAILABLE"}
            assert available == self.served()
            assert summary["labels"] == self.labels
            assert summary["unavailable_labels"] == unavailable
        for label in self.labels:
            r = self.call("POST", f"/api/models/tiny/predict?label={label}", content=DIGIT,
                          headers={"content-type": "image/png"})
            assert r.status_code == (409 if label in unavailable else 200), r.text


def test_no_admin_sequence_locks_the_service(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    export_tiny(repo / "tiny")
    with run_server(repo, tmp_path, workers="2", api_key="s3cret",
                    version_policy="all") as server:
        AdminSequences.url, AdminSequences.model_dir = server.url, repo / "tiny"
        run_state_machine_as_test(AdminSequences, settings=settings(
            max_examples=6, stateful_step_count=12, deadline=None,
            phases=[Phase.generate],  # no shrinking: each step is a live admin action
            suppress_health_check=list(HealthCheck)))
        logs = server.logs()
    assert "Traceback" not in logs
