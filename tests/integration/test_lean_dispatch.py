"""The lean dispatch answers the hot routes (predict, activations, TF Serving's :predict)
exactly as FastAPI's own routes do.

Two real servers over the same tiny model, one without the lean dispatch
(``tests.helpers.fastapi_only_app``): every request below, good and bad, must get the
same status, error text and body."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import FASTAPI_ONLY, Server, png, run_server

KEY = "lane-key"
AUTH = {"X-API-Key": KEY}
DIGIT = np.zeros((28, 28), np.uint8)
DIGIT[6:22, 12:16] = 255  # a "1"

CASES: list[tuple[str, str, dict[str, object]]] = [
    ("raw body", "/api/models/tiny/predict?top_k=3", {"content": png(DIGIT),
                                                      "headers": AUTH}),
    ("multipart, 2 files", "/api/models/tiny/predict?include_input=true&center=false", {
        "files": [("file", ("a.png", png(DIGIT), "image/png")),
                  ("file", ("b.png", png(255 - DIGIT), "image/png"))], "headers": AUTH}),
    ("version and invert", "/api/models/tiny/predict?version=1&invert=on",
     {"content": png(DIGIT), "headers": AUTH}),
    ("no key", "/api/models/tiny/predict", {"content": png(DIGIT)}),
    ("wrong key", "/api/models/tiny/predict", {"content": png(DIGIT),
                                               "headers": {"X-API-Key": "nope"}}),
    ("bad top_k", "/api/models/tiny/predict?top_k=0", {"content": b"x", "headers": AUTH}),
    ("bad invert", "/api/models/tiny/predict?invert=maybe", {"content": b"x",
                                                            "headers": AUTH}),
    ("bad version", "/api/models/tiny/predict?version=abc", {"content": b"x",
                                                            "headers": AUTH}),
    ("unknown model", "/api/models/nope/predict", {"content": png(DIGIT), "headers": AUTH}),
    ("unknown version", "/api/models/tiny/predict?version=9", {"content": png(DIGIT),
                                                              "headers": AUTH}),
    ("unknown label", "/api/models/tiny/predict?label=gold", {"content": png(DIGIT),
                                                             "headers": AUTH}),
    ("not an image", "/api/models/tiny/predict", {"content": b"GIF89a....",
                                                  "headers": {**AUTH,
                                                              "content-type": "image/gif"}}),
    ("empty body", "/api/models/tiny/predict", {"content": b"", "headers": AUTH}),
    ("json body", "/api/models/tiny/predict", {"json": {"a": 1}, "headers": AUTH}),
    ("too large", "/api/models/tiny/predict", {"content": b"\x89PNG" + bytes(5000),
                                               "headers": AUTH}),
    ("activations json", "/api/models/tiny/activations?layers=conv1,probs&channels=0,2",
     {"content": png(DIGIT), "headers": AUTH}),
    ("activations npz", "/api/models/tiny/activations?format=npz",
     {"content": png(DIGIT), "headers": AUTH}),
    ("activations npz by Accept", "/api/models/tiny/activations",
     {"content": png(DIGIT), "headers": {**AUTH, "accept": "application/x-npz"}}),
    ("activations npy", "/api/models/tiny/activations?layers=pool1&format=npy",
     {"content": png(DIGIT), "headers": AUTH}),
    ("activations png", "/api/models/tiny/activations?layers=conv1&format=png&colormap=gray",
     {"content": png(DIGIT), "headers": AUTH}),
    ("activations npy of 2 layers", "/api/models/tiny/activations?layers=0,1&format=npy",
     {"content": png(DIGIT), "headers": AUTH}),
    ("activations unknown layer", "/api/models/tiny/activations?layers=conv9",
     {"content": png(DIGIT), "headers": AUTH}),
    ("activations bad colormap", "/api/models/tiny/activations?colormap=jet",
     {"content": png(DIGIT), "headers": AUTH}),
    ("activations no key", "/api/models/tiny/activations", {"content": png(DIGIT)}),
    ("tfs b64", "/v1/models/tiny:predict", {"json": {"instances": [
        {"b64": base64.b64encode(png(DIGIT)).decode()}]}, "headers": AUTH}),
    ("tfs pixels, query ignored", "/v1/models/tiny:predict?x=1", {"json": {
        "inputs": DIGIT[None, :, :, None].tolist()}, "headers": AUTH}),
    ("tfs bad json", "/v1/models/tiny:predict", {"content": b"{", "headers": AUTH}),
    ("tfs bad b64", "/v1/models/tiny:predict", {"json": {"instances": [{"b64": "@@"}]},
                                                "headers": AUTH}),
    ("tfs unknown model", "/v1/models/nope:predict", {"json": {"instances": [[0]]},
                                                      "headers": AUTH}),
    ("tfs no key", "/v1/models/tiny:predict", {"json": {"instances": [[0]]}}),
    ("tfs too large", "/v1/models/tiny:predict", {"content": b"[" + b" " * 5000 + b"]",
                                                  "headers": AUTH}),
]


@pytest.fixture(scope="module")
def servers(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Server, Server]]:
    tmp = tmp_path_factory.mktemp("lean")
    with run_server(tiny_repo, tmp, api_key=KEY, max_upload_bytes="4096") as fast, \
            run_server(tiny_repo, tmp, app=FASTAPI_ONLY, api_key=KEY,
                       max_upload_bytes="4096") as slow:
        yield fast, slow


def _post(server: Server, path: str, kw: dict[str, object]) -> httpx.Response:
    with server.client() as c:
        return c.post(path, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("what", "path", "kw"), CASES, ids=[c[0] for c in CASES])
def test_same_answer_with_and_without_the_lean_dispatch(servers: tuple[Server, Server], what: str,
                                                    path: str, kw: dict[str, object]) -> None:
    fast, slow = (_post(s, path, kw) for s in servers)
    assert fast.status_code == slow.status_code, (what, fast.text, slow.text)
    assert fast.headers["content-type"] == slow.headers["content-type"], what
    if fast.headers["content-type"] == "application/json":
        # the same but for each prediction's own id
        ids = [r.json().pop("prediction_id", None) for r in (fast, slow)]
        assert ({k: v for k, v in fast.json().items() if k != "prediction_id"}
                == {k: v for k, v in slow.json().items() if k != "prediction_id"}), what
        assert ids[0] != ids[1] or ids == [None, None], what
    else:
        assert fast.status_code == 200 and fast.content == slow.content, what
    for header in ("x-request-id", "x-prediction-id", "www-authenticate", "retry-after"):
        assert (header in fast.headers) == (header in slow.headers), (what, header)


def test_cases_cover_success_and_each_error_status(servers: tuple[Server, Server]) -> None:
    statuses = {_post(servers[0], path, kw).status_code for _, path, kw in CASES}
    assert statuses == {200, 400, 401, 404, 413, 415, 422}


@pytest.mark.parametrize("route", ["predict", "activations"])
def test_lean_requests_are_counted_under_the_route_template(
        servers: tuple[Server, Server], route: str) -> None:
    fast = servers[0]
    _post(fast, f"/api/models/tiny/{route}", {"content": png(DIGIT), "headers": AUTH})
    with fast.client() as c:
        text = c.get("/metrics", headers=AUTH).text
    assert ('cnnlab_requests_total{method="POST",model="tiny",'
            f'route="/api/models/{{name}}/{route}",status="200",version="1"}}') in text
