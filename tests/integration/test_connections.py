"""Connection hygiene over real sockets: a client that stalls in its headers or its body,
or trickles its body, is answered 408 and dropped while others are served; headers over
their cap get 431; a connection beyond the cap gets 503 with Retry-After."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import FIXTURES, Server, run_server

DIGIT = (FIXTURES / "digits" / "7_test0.png").read_bytes()


@pytest.fixture(scope="module")
def server(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tiny_repo, tmp_path_factory.mktemp("conns"), header_timeout_s="1",
                    body_timeout_s="1", min_body_rate_bytes_s="100", max_header_bytes="2048",
                    max_connections="12") as s:
        yield s


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def answer(raw: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def predict(server: Server) -> httpx.Response:
    with server.client() as c:
        return c.post("/api/models/tiny/predict", content=DIGIT,
                      headers={"content-type": "image/png"})


def test_stalled_headers_are_answered_408_and_closed_while_others_are_served(
        server: Server) -> None:
    stalled = [connect(server) for _ in range(8)]
    for sock in stalled:
        sock.sendall(b"POST /api/models/tiny/pre")  # half a request line, then nothing
    assert predict(server).status_code == 200  # served while they hang
    for sock in stalled:
        status, _, body = answer(read_all(sock))  # the server closes: recv ends
        sock.close()
        assert status == 408 and "headers did not arrive within 1 s" in body["error"]


def test_a_silent_connection_is_closed_too(server: Server) -> None:
    with connect(server) as sock:
        status, _, _ = answer(read_all(sock))
    assert status == 408


def test_a_stalled_body_is_answered_408(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /api/models/tiny/predict HTTP/1.1\r\nhost: t\r\n"
                     b"content-type: image/png\r\ncontent-length: 1000\r\n\r\n" + DIGIT[:10])
        status, _, body = answer(read_all(sock))
    assert status == 408 and "body stalled for 1 s" in body["error"]


def test_a_trickled_body_is_cut_at_its_minimum_rate(server: Server) -> None:
    """A byte every 0.4 s never stalls for the 1 s body timeout, but 2.5 bytes/s is far
    below the 100 bytes/s minimum: cut after about 1 s, not after the 400 s it would take."""
    with connect(server) as sock:
        sock.sendall(b"POST /api/models/tiny/predict HTTP/1.1\r\nhost: t\r\n"
                     b"content-type: image/png\r\ncontent-length: 1000\r\n\r\n")
        started = time.monotonic()
        for byte in DIGIT[:40]:  # until the server answers
            sock.sendall(bytes([byte]))
            if select.select([sock], [], [], 0.4)[0]:
                break
        elapsed = time.monotonic() - started
        status, _, body = answer(read_all(sock))
    assert status == 408 and "slower than 100 bytes/s" in body["error"]
    assert elapsed < 10


@pytest.mark.parametrize("head", [
    b"x-big: " + b"a" * 3000 + b"\r\n\r\n",  # one header over the cap, whole
    b"x-big: " + b"a" * 3000,                 # still arriving: refused before it ends
    b"".join(b"x-h%d: %s\r\n" % (i, b"b" * 60) for i in range(40)),  # many small ones
])
def test_headers_over_their_cap_get_431(server: Server, head: bytes) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nhost: t\r\n" + head)
        status, _, body = answer(read_all(sock))
    assert status == 431 and "2048-byte limit" in body["error"]


def test_headers_under_their_cap_are_served(server: Server) -> None:
    with server.client() as c:
        r = c.get("/health/live", headers={"x-padding": "p" * 1500})
    assert r.status_code == 200


def test_connections_beyond_the_cap_get_503_with_retry_after(server: Server) -> None:
    held = [connect(server) for _ in range(12)]
    try:
        with connect(server) as extra:
            status, headers, body = answer(read_all(extra))
    finally:
        for sock in held:
            sock.close()
    assert status == 503 and headers["retry-after"] == "1"
    assert "limit of 12 connections" in body["error"]
    deadline = time.monotonic() + 30  # the held ones gone, it serves again
    while (status := predict(server).status_code) != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status == 200
