"""What a service exposed to strangers shows and allows: security headers on every answer,
keys (from files, a separate admin key), readiness without file paths for strangers, and
log lines a URL cannot forge."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, run_server

DIGIT = (FIXTURES / "digits" / "7_test0.png").read_bytes()
PNG = {"content-type": "image/png"}


def test_every_answer_carries_the_security_headers(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path, max_upload_bytes="4096") as server, \
            server.client() as c:
        api = [c.post("/api/models/tiny/predict", content=DIGIT, headers=PNG),
               c.get("/api/models/nope"),
               c.post("/api/models/tiny/predict", content=b"\0" * 5000, headers=PNG)]  # 413
        page, script = c.get("/"), c.get("/static/demo.js")
    assert [r.status_code for r in api] == [200, 404, 413]
    for r in (*api, page, script):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    for r in api:  # data: it may load nothing
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
    page_policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in page_policy and "unsafe-inline" not in page_policy
    assert "<script>" not in page.text and 'src="/static/demo.js"' in page.text
    assert script.headers["content-type"].startswith("text/javascript")


def test_the_admin_key_is_separate_and_keys_come_from_files(tiny_repo: Path,
                                                            tmp_path: Path) -> None:
    (tmp_path / "api").write_text("inference-key\n")
    (tmp_path / "admin").write_text("admin-key\n")
    with run_server(tiny_repo, tmp_path, api_key_file=str(tmp_path / "api"),
                    admin_api_key_file=str(tmp_path / "admin")) as server, \
            server.client() as c:
        def as_(key: str) -> dict[str, str]:
            return {"x-api-key": key}

        predicted = c.post("/api/models/tiny/predict", content=DIGIT,
                           headers={**PNG, **as_("inference-key")})
        by_admin = c.post("/api/models/tiny/predict", content=DIGIT,
                          headers={**PNG, **as_("admin-key")})
        refused = c.post("/admin/models/tiny/unload", headers=as_("inference-key"))
        unloaded = c.post("/admin/models/tiny/unload", headers=as_("admin-key"))
        nobody = c.post("/api/models/tiny/predict", content=DIGIT, headers=PNG)
    assert (predicted.status_code, by_admin.status_code) == (200, 200)
    assert refused.status_code == 401 and "admin API key" in refused.json()["error"]
    assert unloaded.status_code == 200 and unloaded.json()["ready"] is False
    assert nobody.status_code == 401


def test_readiness_shows_load_errors_only_to_key_holders(tiny_repo: Path,
                                                         tmp_path: Path) -> None:
    repo = tmp_path / "models"
    shutil.copytree(tiny_repo / "tiny", repo / "tiny" / "1")
    shutil.copytree(tiny_repo / "tiny" / "1", repo / "broken" / "1")
    (repo / "broken" / "1" / "saved_model.pb").write_bytes(b"not a protobuf")
    with run_server(repo, tmp_path, wait_ready=False, api_key="k") as server, \
            server.client() as c:
        stranger, holder = c.get("/health/ready"), c.get("/health/ready",
                                                         headers={"x-api-key": "k"})
    assert stranger.status_code == holder.status_code == 503
    told = stranger.json()
    assert told["models"]["broken"] == [{"version": 1, "state": "END", "error": ""}]
    assert str(repo) not in stranger.text and "protobuf" not in stranger.text.lower()
    assert holder.json()["models"]["broken"][0]["error"]  # the key holder sees why


@pytest.mark.parametrize("path", ["/api/models/tiny%0a2026-01-01 INFO forged/predict",
                                  "/api/models/x%0d%0aforged%1b[31m/predict"])
def test_a_url_cannot_forge_log_lines(tiny_repo: Path, tmp_path: Path, path: str) -> None:
    with run_server(tiny_repo, tmp_path) as server, server.client() as c:
        assert c.get(path).status_code in (404, 405)
        # the access line is written as the answer leaves: wait until it is there
        deadline = time.monotonic() + 10
        while "GET /api/models/" not in (logs := server.logs()):
            assert time.monotonic() < deadline, "no access line for the request"
            time.sleep(0.05)
    assert not any(line.startswith(("2026-01-01", "forged")) for line in logs.splitlines())
    assert "\\x0a" in logs or "\\x0d" in logs
    assert "\x1b" not in logs


def test_listening_beyond_loopback_without_a_key_warns(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path, host="0.0.0.0") as exposed:
        warned = "without an API key" in exposed.logs()
    with run_server(tiny_repo, tmp_path, host="0.0.0.0", api_key="k") as guarded:
        quiet = "without an API key" not in guarded.logs()
    assert warned and quiet
