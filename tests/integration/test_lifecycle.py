"""Process lifecycle and cross-cutting security: graceful shutdown, CORS, JSON logs."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from tests.helpers import run_server


def queued_images(server_url: str) -> float:
    text = httpx.get(f"{server_url}/metrics", timeout=30).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("cnnlab_queue_depth{"))


def test_sigterm_lets_requests_in_flight_finish(tiny_repo: Path, tmp_path: Path) -> None:
    # max_batch_size=1 turns each 1,000-image request into 1,000 signature calls, so the
    # six requests stay in flight for seconds. Their pixels travel as raw bytes (the V2
    # binary tensor extension): the six arrive long before the first is answered.
    n, per_request = 6, 1000
    pixels = np.zeros((per_request, 28, 28, 1), np.uint8)
    header = json.dumps({"inputs": [{"name": "image", "shape": list(pixels.shape),
                                     "datatype": "UINT8",
                                     "parameters": {"binary_data_size": pixels.nbytes}}]}
                        ).encode()
    with run_server(tiny_repo, tmp_path, max_batch_size="1", max_instances="4096",
                    max_queue_images="100000") as server:
        results: list[int] = []

        def fire() -> None:
            with server.client() as c:
                results.append(c.post(
                    "/v2/models/tiny/infer", content=header + pixels.tobytes(),
                    headers={"Inference-Header-Content-Length": str(len(header)),
                             "content-type": "application/octet-stream"}).status_code)

        threads = [threading.Thread(target=fire) for _ in range(n)]
        for th in threads:
            th.start()
        deadline = time.monotonic() + 120
        # all six are inside the server once more than five requests' worth is queued
        while queued_images(server.url) <= (n - 1) * per_request:
            assert time.monotonic() < deadline, "requests never all arrived"
            time.sleep(0.02)
        server.proc.send_signal(signal.SIGTERM)
        for th in threads:
            th.join(120)
        server.proc.wait(60)
        refused = False
        try:
            httpx.get(server.url + "/health/live", timeout=2)
        except httpx.TransportError:
            refused = True
    assert results == [200] * n  # every request in flight completed
    assert refused               # and nothing new is taken after shutdown
    assert "Shutting down" in server.logs()


def test_cors_can_be_enabled_for_listed_origins(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path, cors_origins='["http://app.example"]') as server, \
            server.client() as c:
        ok = c.get("/api/models", headers={"Origin": "http://app.example"})
        other = c.get("/api/models", headers={"Origin": "http://evil.example"})
    assert ok.headers["access-control-allow-origin"] == "http://app.example"
    assert "access-control-allow-origin" not in other.headers


def test_json_logs_have_one_line_per_request(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path, log_format="json") as server, server.client() as c:
        c.get("/api/models/tiny", headers={"X-Request-ID": "trace-42"})
    lines = [json.loads(line) for line in server.logs().splitlines()
             if line.startswith("{") and "trace-42" in line]
    assert len(lines) == 1
    entry = lines[0]
    assert entry["route"] == "/api/models/{name}" and entry["status"] == 200
    assert entry["logger"] == "cnnlab.access" and entry["ms"] > 0


def test_start_up_logs_say_the_device_without_alarming_noise(tiny_repo: Path,
                                                             tmp_path: Path) -> None:
    """On a CPU host TensorFlow's C++ start-up notices (a cuInit "failure" among them)
    stay out of the log; the device in use is logged once."""
    with run_server(tiny_repo, tmp_path) as server:
        logs = server.logs()
    assert "running on /CPU:0" in logs
    for noise in ("cuInit", "E0000", "I0000", "absl::InitializeLog"):
        assert noise not in logs, noise
