"""Errors that point the way: a misspelt option, an unknown model, version or label, a
wrong method say what would work; admin JSON routes read `curl -d` bodies; V2 statistics
say when a version last ran."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import FIXTURES, Server, export_tiny, run_server

DIGIT = (FIXTURES / "digits" / "7_test0.png").read_bytes()
PNG = {"content-type": "image/png"}
KEY = {"x-api-key": "k"}


@pytest.fixture(scope="module")
def server(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``tiny`` with versions 1 and 2 on disk, the default policy serving only 2."""
    tmp = tmp_path_factory.mktemp("guidance")
    repo = tmp / "models"
    export_tiny(repo / "tiny", version=1)
    export_tiny(repo / "tiny", version=2, seed=1)
    with run_server(repo, tmp, api_key="k", version_labels='{"tiny": {"stable": 2}}') as s:
        yield s


def call(server: Server, method: str, path: str, **kw: object) -> httpx.Response:
    with server.client(headers=KEY) as c:
        return c.request(method, path, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "path", "needles"), [
    # a misspelt option is refused, naming the ones the route takes
    ("POST", "/api/models/tiny/predict?topk=3", ["'topk'", "top_k", "version"]),
    ("POST", "/api/models/tiny/predict?versoin=1", ["'versoin'", "version"]),
    ("POST", "/api/models/tiny/activations?layer=conv1", ["'layer'", "layers"]),
    ("GET", "/api/models/tiny/summary?verbose=1", ["'verbose'"]),
    ("POST", "/v1/models/tiny:predict?version=1", ["'version'", "no query parameters"]),
])
def test_unknown_query_parameters_are_refused(server: Server, method: str, path: str,
                                              needles: list[str]) -> None:
    r = call(server, method, path, content=DIGIT, headers={**KEY, **PNG})
    assert r.status_code == 422, r.text
    for needle in needles:
        assert needle in r.json()["error"]


@pytest.mark.parametrize(("path", "needles"), [
    ("/api/models/tny/predict", ["'tny' not found", "models: tiny"]),
    ("/api/models/tiny/predict?version=1", ["no available version 1", "serving [2]",
                                            "'latest' does not select it"]),
    ("/api/models/tiny/predict?version=7", ["no available version 7", "on disk: [1, 2]"]),
    ("/api/models/tiny/predict?label=beta", ["'beta'", "labels: stable"]),
])
def test_not_found_says_what_exists(server: Server, path: str, needles: list[str]) -> None:
    r = call(server, "POST", path, content=DIGIT, headers={**KEY, **PNG})
    assert r.status_code == 404, r.text
    for needle in needles:
        assert needle in r.json()["error"]


def test_a_wrong_method_or_a_verb_on_get_explains_itself(server: Server) -> None:
    verb = call(server, "GET", "/v1/models/tiny:predict")
    method = call(server, "GET", "/api/models/tiny/predict")
    assert verb.status_code == 405 and "':predict' is called with POST" in verb.json()["error"]
    assert verb.headers["allow"] == "POST"
    assert method.status_code == 405
    assert "GET is not allowed on /api/models/tiny/predict; it takes POST" in \
        method.json()["error"]


def test_admin_json_routes_read_a_body_of_any_declared_type(server: Server) -> None:
    """``curl -d '{"version": 2}'`` declares a form; the body is JSON all the same."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    r = call(server, "PUT", "/admin/models/tiny/labels/canary", content=b'{"version": 2}',
             headers={**KEY, **form})
    bad = call(server, "PUT", "/admin/models/tiny/labels/canary", content=b"version=2",
               headers={**KEY, **form})
    assert r.status_code == 200 and r.json()["labels"]["canary"] == 2
    assert bad.status_code == 422 and "JSON" in bad.json()["error"]
