"""Hostile input: each bad request gets the right 4xx in the JSON error shape, and the
service answers a normal request correctly right after it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from tests.helpers import Server, fixture_images, png, run_server
from tests.service.images.test_decode import png_header_claiming

LABEL, DIGIT = fixture_images("digits")[3]
PNG = {"content-type": "image/png"}


def pil_bytes(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("L", (8, 8), c) for c in (0, 255)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def rss_kib(server: Server) -> int:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def still_healthy(c: httpx.Client) -> None:
    r = c.post("/api/models/mnist/predict", content=DIGIT, headers=PNG)
    assert r.status_code == 200
    assert r.json()["predictions"][0]["top_k"][0]["class_index"] == LABEL


UPLOAD = "/api/models/mnist/predict"
CASES: list[tuple[str, dict[str, object], int, str]] = [
    ("empty body", {"content": b"", "headers": PNG}, 400, "empty"),
    ("wrong content type", {"content": DIGIT, "headers": {"content-type": "text/plain"}}, 415,
     "text/plain"),
    ("truncated PNG", {"content": DIGIT[:60], "headers": PNG}, 400, "PNG"),
    ("truncated JPEG", {"content": cv2.imencode(".jpg", np.full((32, 32), 90, np.uint8))[1]
                        .tobytes()[:200], "headers": {"content-type": "image/jpeg"}}, 400,
     "JPEG"),
    ("random bytes named .png", {"files": {"file": ("x.png", np.random.default_rng(0)
                                 .bytes(500), "image/png")}}, 415, "not supported"),
    ("SVG", {"content": b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
             "headers": {"content-type": "image/svg+xml"}}, 415, "SVG"),
    ("animated GIF", {"content": animated_gif(), "headers": {"content-type": "image/gif"}}, 415,
     "GIF"),
    ("bomb: header claims 100000x100000", {"content": png_header_claiming(100_000, 100_000),
                                           "headers": PNG}, 413, "100000x100000"),
    ("multipart without files", {"files": {"file": (None, "b")}}, 400, "no file parts"),
    ("a picture not named file", {"files": {"image": ("d.png", DIGIT, "image/png")}}, 400,
     "part 'image' is a file"),
    ("1,000 files", {"files": [("file", (f"{i}.png", b"x", "image/png")) for i in range(1000)]},
     413, "Too many files"),
    ("body over the size cap", {"content": b"\x89PNG\r\n\x1a\n" + b"\0" * (11 * 1024 * 1024),
                                "headers": PNG}, 413, "limit"),
]


@pytest.mark.parametrize(("what", "kwargs", "status", "needle"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_uploads(bundled_server: Server, what: str, kwargs: dict[str, object],
                     status: int, needle: str) -> None:
    with bundled_server.client() as c:
        r = c.post(UPLOAD, **kwargs)  # type: ignore[arg-type]
        assert r.status_code == status, (what, r.text)
        assert list(r.json()) == ["error"] and needle in r.json()["error"]
        still_healthy(c)


ODD_BUT_VALID = {
    "16-bit PNG": png(np.full((28, 28), 0, np.uint16)),
    "RGBA PNG": png(np.dstack([np.zeros((28, 28, 3), np.uint8), np.full((28, 28), 255,
                                                                         np.uint8)])),
    "CMYK JPEG": pil_bytes(Image.new("CMYK", (30, 30), (0, 0, 0, 0)), "JPEG"),
    "1x1 image": png(np.zeros((1, 1), np.uint8)),
    "palette PNG": pil_bytes(Image.new("P", (20, 20), 3), "PNG"),
    "TIFF": pil_bytes(Image.new("L", (28, 28), 0), "TIFF"),
    "BMP": pil_bytes(Image.new("RGB", (28, 28)), "BMP"),
    "WebP": pil_bytes(Image.new("RGB", (28, 28)), "WEBP"),
}


@pytest.mark.parametrize("what", list(ODD_BUT_VALID))
def test_odd_but_valid_images_are_served(bundled_server: Server, what: str) -> None:
    with bundled_server.client() as c:
        r = c.post(UPLOAD, content=ODD_BUT_VALID[what], headers={"content-type": "image/png"})
        assert r.status_code == 200, (what, r.text)
        assert len(r.json()["predictions"][0]["probabilities"]) == 10
        still_healthy(c)


def test_bomb_is_refused_without_a_memory_spike(bundled_server: Server) -> None:
    bomb = png_header_claiming(100_000, 100_000)  # 10^10 pixels: 10 GB if decoded
    with bundled_server.client() as c:
        still_healthy(c)
        before = rss_kib(bundled_server)
        for _ in range(20):
            assert c.post(UPLOAD, content=bomb, headers=PNG).status_code == 413
        assert rss_kib(bundled_server) - before < 50 * 1024  # < 50 MiB, nowhere near 10 GB


JSON_CASES: list[tuple[str, bytes, str]] = [
    ("NaN", b'{"instances": [[[NaN]]]}', "NaN"),
    ("strings", json.dumps({"instances": [[["a"] * 28] * 28]}).encode(), "numbers"),
    ("wrong shape", json.dumps({"instances": [[0] * 784]}).encode(), "shape"),
    ("floats 0..1", json.dumps({"instances": [[[0.5] * 28] * 28]}).encode(), "integers"),
    ("ragged", json.dumps({"instances": [[[0] * 28] * 27 + [[0] * 3]]}).encode(), "numbers"),
    ("bad b64", json.dumps({"instances": [{"b64": "!!!"}]}).encode(), "base64"),
    ("b64 of not-an-image", json.dumps({"instances": [{"b64": "aGVsbG8="}]}).encode(),
     "not supported"),
    ("not an object", b"[1, 2, 3]", "JSON object"),
    ("huge nesting", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("too many instances", json.dumps({"instances": [[[[0]] * 28] * 28] * 1025}).encode(),
     "limit"),
]


@pytest.mark.parametrize(("what", "body", "needle"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_bad_tf_serving_bodies(bundled_server: Server, what: str, body: bytes,
                               needle: str) -> None:
    with bundled_server.client() as c:
        r = c.post("/v1/models/mnist:predict", content=body,
                   headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (what, r.status_code, r.text)
        assert needle in r.json()["error"]
        still_healthy(c)


def test_v2_bad_tensors(bundled_server: Server) -> None:
    bodies = [
        {"inputs": [{"name": "image", "shape": [1, 28, 28, 1], "datatype": "FP32",
                     "data": [float("nan")] * 784}]},
        {"inputs": [{"name": "image", "shape": [-1, 28, 28, 1], "datatype": "UINT8",
                     "data": [0]}]},
        {"inputs": [{"name": "image", "shape": [1, 28, 28, 1], "datatype": "COMPLEX",
                     "data": [0]}]},
        {"inputs": "nope"},
        # shapes whose product overflows int64, or beyond int64 itself
        {"inputs": [{"name": "image", "shape": [2**62, 2**62, 28, 1], "datatype": "UINT8",
                     "data": [0]}]},
        {"inputs": [{"name": "image", "shape": [2**64, 28, 28, 1], "datatype": "UINT8",
                     "data": [0]}]},
        {"inputs": [{"name": "image", "shape": [2**40, 28, 28, 1], "datatype": "UINT8",
                     "data": [0]}]},
    ]
    with bundled_server.client() as c:
        for body in bodies:
            r = c.post("/v2/models/mnist/infer", content=json.dumps(body).encode())
            assert r.status_code in (400, 413), r.text
            assert "error" in r.json()
        r = c.post("/v2/models/mnist/infer", content=b'{"inputs": []}',
                   headers={"Inference-Header-Content-Length": "999"})
        assert r.status_code == 400 and "does not fit" in r.json()["error"]
        still_healthy(c)


@pytest.mark.parametrize("path", [
    "/api/models/..%2F..%2Fetc/predict",
    "/api/models/%2e%2e/predict",
    "/api/models/mnist%00/predict",
    "/v1/models/..%2Fmodels%2Fmnist",
    "/v2/models/..%252F..%252Fetc/infer",
    "/api/models/mnist/activations?layers=../../etc/passwd",
    "/api/models/mnist/activations?layers=conv1%2F..%2F..",
])
def test_traversal_names_are_just_unknown_names(bundled_server: Server, path: str) -> None:
    with bundled_server.client() as c:
        r = c.post(path, content=DIGIT, headers=PNG)
        assert r.status_code in (404, 405), r.text
        assert "error" in r.json()
        assert "root:" not in r.text
        still_healthy(c)


@pytest.mark.parametrize(("query", "needle"), [
    ({"matrix": "[[NaN, 0, 0]]"}, "NaN"),
    ({"matrix": "[[Infinity]]"}, "NaN or infinity"),
    ({"matrix": "[[1, 1], [1, 1]]"}, "odd"),
    ({"matrix": json.dumps(np.ones((17, 17), int).tolist())}, "at most 15"),
    ({"kernel": "box", "size": "999"}, "odd"),
    ({"kernel": "identity", "weight": "nan"}, "weight"),
    ({"kernel": "sobel_magnitude", "weight": "inf", "format": "json"}, "weight"),
    ({"kernel": "sobel_magnitude", "weight": "1e300", "format": "json"}, "weight"),
    ({"matrix": "[[1e300]]", "format": "json"}, "limit is"),
    ({"kernel": "box", "weight": "-1e7"}, "weight"),
])
def test_hostile_kernels(bundled_server: Server, query: dict[str, str], needle: str) -> None:
    with bundled_server.client() as c:
        r = c.post("/api/filter", params=query, content=png(np.zeros((9, 9), np.uint8)),
                   headers=PNG)
        assert 400 <= r.status_code < 500, r.text
        assert needle in r.json()["error"]
        still_healthy(c)


def test_deeply_nested_pipeline_ops_are_refused(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        r = c.post("/api/pipeline", params={"ops": "[" * 2000 + "]" * 2000},
                   content=DIGIT, headers=PNG)
        assert r.status_code == 422 and "depth" in r.json()["error"]
        still_healthy(c)


@pytest.mark.parametrize("path", ["/v2/models/mnist/versions/abc",
                                  "/v2/models/mnist/versions/1e3/ready",
                                  "/v2/models/mnist/versions/-1/stats",
                                  "/v1/models/mnist/versions/99999999999999999999999"])
def test_non_numeric_or_huge_versions_are_unknown_versions(bundled_server: Server,
                                                           path: str) -> None:
    with bundled_server.client() as c:
        r = c.get(path)
        assert r.status_code in (400, 404), r.text
        assert "error" in r.json()


def test_cors_is_off_by_default(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        r = c.get("/health/live", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("path", ["/api/models/tiny/predict",     # the lean dispatch
                                  "/api/filter?kernel=identity",  # a FastAPI route
                                  "/v1/models/tiny/versions/1:predict"])
def test_a_streamed_body_over_the_cap_is_413(tiny_repo: Path, tmp_path: Path,
                                             path: str) -> None:
    """Without Content-Length the cap is found while reading: 413 in the JSON shape."""
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"\x89PNG" + bytes(1020)

    with run_server(tiny_repo, tmp_path, max_upload_bytes="4096") as server, \
            server.client() as c:
        r = c.post(path, content=chunks(), headers={"content-type": "image/png"})
        alive = c.get("/health/live")
    assert r.status_code == 413 and "4096-byte limit" in r.json()["error"]
    assert alive.status_code == 200


# each of these once answered 500
ONCE_500: list[tuple[str, str, dict[str, object], int, str]] = [
    ("pool of size 0", '/api/pipeline?ops=[{"op":"pool","size":0}]',
     {"content": DIGIT, "headers": PNG}, 422, "greater than or equal to 1"),
    ("feedback position past int64", "/api/models/mnist/feedback",
     {"json": {"request_id": "x", "label": 1, "position": 2**63}}, 422, "position"),
    ("a superscript header length", "/v2/models/mnist/infer",  # b"\xb2": "²" in latin-1
     {"content": b'{"inputs": []}', "headers": {"Inference-Header-Content-Length": b"\xb2"}},
     400, "does not fit"),
    ("a superscript layer index", "/api/models/mnist/activations?layers=%C2%B2",
     {"content": DIGIT, "headers": PNG}, 404, "unknown layer"),
    ("activations of many images as TF Serving JSON", "/v1/models/mnist:predict",
     {"json": {"signature_name": "activations", "instances": [[[[0]] * 28] * 28] * 15}},
     413, "too many for JSON"),
]


@pytest.mark.parametrize(("what", "path", "kwargs", "status", "needle"), ONCE_500,
                         ids=[c[0] for c in ONCE_500])
def test_what_once_answered_500(bundled_server: Server, what: str, path: str,
                                kwargs: dict[str, object], status: int, needle: str) -> None:
    with bundled_server.client() as c:
        r = c.post(path, **kwargs)  # type: ignore[arg-type]
        assert r.status_code == status, (what, r.text)
        assert needle in r.json()["error"], r.text
        still_healthy(c)
