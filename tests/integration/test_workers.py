"""Several worker processes on one port (CNNLAB_WORKERS=2): every request is answered,
/metrics adds all workers up, an admin action reaches every worker, whichever took it, a
restarted worker serves what its peers serve, and connections are spread over the workers.

Each request opens a new connection, so either worker may take it."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.helpers import FIXTURES, Server, run_server

KEY = {"X-API-Key": "s3cret"}
DIGIT = (FIXTURES / "digits" / "7_test0.png").read_bytes()


def fresh(url: str, method: str, path: str, **kw: object) -> httpx.Response:
    """One request, with the API key, on a connection of its own."""
    with httpx.Client(base_url=url, timeout=30, headers=KEY) as c:
        return c.request(method, path, **kw)  # type: ignore[arg-type]


def predict(url: str, query: str = "") -> httpx.Response:
    return fresh(url, "POST", f"/api/models/tiny/predict{query}", content=DIGIT,
                 headers={"content-type": "image/png"})


def served_predictions(url: str) -> float:
    text = fresh(url, "GET", "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("cnnlab_requests_total{")
               and 'route="/api/models/{name}/predict"' in line and 'status="200"' in line)


def listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` (each worker has its own: SO_REUSEPORT)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows
               if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


def wait_for_both(server: Server) -> None:
    """Until both workers listen (ready answers as soon as the first one does)."""
    deadline = time.monotonic() + 120
    port = int(server.url.rsplit(":", 1)[1])
    while listening_sockets(port) < 2:
        assert time.monotonic() < deadline, "a worker did not start listening"
        time.sleep(0.1)


def test_two_workers_share_the_port_and_the_metrics(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path, workers="2", api_key="s3cret") as server:
        wait_for_both(server)
        answers = [predict(server.url) for _ in range(24)]
        counted = [served_predictions(server.url) for _ in range(6)]
        logs = server.logs()
    assert [r.status_code for r in answers] == [200] * 24
    assert {r.json()["version"] for r in answers} == {1}
    # two processes loaded the models, and both answered predictions
    assert len(set(re.findall(r"\(worker (\d+) of 2\)", logs))) == 2
    assert len(set(re.findall(r"\[(\d+)\]: POST /api/models/tiny/predict 200", logs))) == 2
    # whichever worker answers /metrics, it counts every worker's requests
    assert counted == [24.0] * 6


def test_an_admin_action_reaches_every_worker(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path, workers="2", api_key="s3cret") as server:
        url = server.url
        assert fresh(url, "POST", "/admin/models/tiny/unload").status_code == 200
        unloaded = [predict(url).status_code for _ in range(16)]
        assert fresh(url, "POST", "/admin/models/tiny/load").json()["ready"] is True
        label = fresh(url, "PUT", "/admin/models/tiny/labels/stable", json={"version": 1})
        labelled = [predict(url, "?label=stable") for _ in range(16)]
        summaries = [fresh(url, "GET", "/api/models/tiny").json()["labels"] for _ in range(8)]
    assert unloaded == [503] * 16  # no worker kept serving the unloaded model
    assert label.status_code == 200
    assert [r.status_code for r in labelled] == [200] * 16
    assert summaries == [{"stable": 1}] * 8


def test_a_restarted_worker_serves_what_its_peers_serve(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path, workers="2", api_key="s3cret") as server:
        assert fresh(server.url, "POST", "/admin/models/tiny/unload").status_code == 200
        started = set(re.findall(r"\(worker (\d+) of 2\)", server.logs()))
        os.kill(int(min(started)), signal.SIGKILL)
        deadline = time.monotonic() + 120
        while not (new := set(re.findall(r"\(worker (\d+) of 2\)", server.logs())) - started):
            assert time.monotonic() < deadline, "the supervisor did not start a new worker"
            time.sleep(0.2)
        wait_for_both(server)  # until the newcomer listens
        unloaded = [predict(server.url).status_code for _ in range(24)]
        logs = server.logs()
    assert unloaded == [503] * 24  # the newcomer replayed the unload
    [pid] = new
    assert f"[{pid}]: POST /api/models/tiny/predict 503" in logs  # and answered some


def request_on(sock: socket.socket, rid: str) -> int:
    """One keep-alive request on an open connection; returns the status."""
    sock.sendall(b"POST /api/models/tiny/predict HTTP/1.1\r\nhost: t\r\n"
                 b"content-type: image/png\r\nx-request-id: " + rid.encode() +
                 f"\r\ncontent-length: {len(DIGIT)}\r\n\r\n".encode() + DIGIT)
    with sock.makefile("rb") as reply:
        status = int(reply.readline().split()[1])
        length = 0
        while (line := reply.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        reply.read(length)
    return status


def test_keep_alive_connections_are_spread_over_the_workers(tiny_repo: Path,
                                                           tmp_path: Path) -> None:
    """The kernel spreads connections over the workers' SO_REUSEPORT sockets by a hash of
    each connection's addresses: 16 connections (not 8, which all land on one of two
    workers once in 128 runs) leave a worker idle once in 32,768 runs."""
    with run_server(tiny_repo, tmp_path, workers="2") as server:
        wait_for_both(server)
        deadline = time.monotonic() + 120
        port = int(server.url.rsplit(":", 1)[1])
        # 16 keep-alive connections opened at once (as a client's pool does), then used
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        statuses = [request_on(c, f"burst-{i}") for i, c in enumerate(conns)]
        for c in conns:
            c.close()
        pattern = r"\[(\d+)\]: POST /api/models/tiny/predict 200 rid=burst-"
        while len(served_by := re.findall(pattern, server.logs())) < 16:  # (logged after
            assert time.monotonic() < deadline, "requests not logged"     # the answer)
            time.sleep(0.1)
    assert statuses == [200] * 16
    assert len(Counter(served_by)) == 2, Counter(served_by)  # no idle worker


def test_a_worker_killed_under_load_costs_only_its_requests_in_flight(
        tiny_repo: Path, tmp_path: Path) -> None:
    """8 clients keep predicting with a label; one of two workers is SIGKILLed. At most
    the 8 requests in flight fail, a new worker replaces it, and it serves the label."""
    clients = 8
    with run_server(tiny_repo, tmp_path, workers="2", api_key="s3cret") as server:
        wait_for_both(server)
        url = server.url
        assert fresh(url, "PUT", "/admin/models/tiny/labels/stable",
                     json={"version": 1}).status_code == 200
        started = set(re.findall(r"\(worker (\d+) of 2\)", server.logs()))
        stop = threading.Event()
        outcomes: list[int] = []

        def client() -> None:
            while not stop.is_set():
                try:
                    outcomes.append(predict(url, "?label=stable").status_code)
                except httpx.TransportError:
                    outcomes.append(0)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        time.sleep(2)
        os.kill(int(min(started)), signal.SIGKILL)
        deadline = time.monotonic() + 120
        while not (new := set(re.findall(r"\(worker (\d+) of 2\)", server.logs())) - started):
            assert time.monotonic() < deadline, "the supervisor did not start a new worker"
            time.sleep(0.2)
        [pid] = new
        while f"[{pid}]: POST /api/models/tiny/predict 200" not in server.logs():
            assert time.monotonic() < deadline, "the new worker served nothing"
            time.sleep(0.1)  # until the new worker serves the label
        stop.set()
        for t in threads:
            t.join()
        logs = server.logs()
    failed = [s for s in outcomes if s != 200]
    assert len(outcomes) > 100 and len(failed) <= clients, Counter(outcomes)
    assert f"[{pid}]: POST /api/models/tiny/predict 200" in logs  # serving the label
