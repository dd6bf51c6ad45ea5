"""Capture and feedback over HTTP: uploads served by two workers are stored off the
request path (SQLite, WAL), a client labels them by request id, and the summary and the
Prometheus gauges say how the model does on its own traffic."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from cnnlab.captures import captures
from tests.conftest import empty_store
from tests.helpers import Server, dim_pictures, export_tiny, png, run_server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def capturing(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """Two workers capturing every upload into the default SQLite file, or into a real
    PostgreSQL server (as several replicas would share one)."""
    repo = tmp_path_factory.mktemp("capture-repo")
    export_tiny(repo / "tiny", version=1, trusted=True)
    store = tmp_path_factory.mktemp("captures")
    url = (f"sqlite:///{store / 'captures.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    if request.param == "postgresql":  # empty, as the SQLite file starts
        empty_store(url)
    with run_server(repo, tmp_path_factory.mktemp("capture-run"), workers="2",
                    capture_rate="1", capture_url=url) as server:
        yield server, url


def rows(url: str) -> list[tuple[str, int, int, bytes]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as db:
            if not sa.inspect(db).has_table("captures"):
                return []
            c = captures.c
            return [tuple(r) for r in db.execute(  # type: ignore[misc]
                sa.select(c.prediction_id, c.position, c.predicted, c.seen_png).order_by(c.id))]
    finally:
        engine.dispose()


def wait_for(url: str, count: int) -> list[tuple[str, int, int, bytes]]:
    """The store's rows once ``count`` are there (the writer is asynchronous)."""
    deadline = time.monotonic() + 20
    while True:
        found = rows(url)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def upload(server: Server, pictures: np.ndarray) -> httpx.Response:
    files = [("file", (f"{i}.png", png(p[..., 0]), "image/png"))
             for i, p in enumerate(pictures)]
    return httpx.post(f"{server.url}/api/models/tiny/predict", files=files, timeout=30)


def test_uploads_are_captured_and_labelled(capturing: tuple[Server, str]) -> None:
    server, url = capturing
    batches = [dim_pictures(1 + i % 3, seed=i) for i in range(30)]
    with ThreadPoolExecutor(8) as pool:  # under load, on both workers
        answers = list(pool.map(lambda b: upload(server, b), batches))
    assert [a.status_code for a in answers] == [200] * len(batches)
    sent = {(a.json()["prediction_id"], i): int(np.argmax(p["probabilities"]))
            for a in answers for i, p in enumerate(a.json()["predictions"])}
    stored = wait_for(url, len(sent))
    assert {(r[0], r[1]): r[2] for r in stored} == sent  # every picture, as predicted
    assert all(r[3].startswith(b"\x89PNG") for r in stored)  # the picture the model saw

    # feedback: the true class of three pictures, one of them wrong
    rid0, rid1, rid2 = [rid for rid, position in sent if position == 0][:3]
    truths = {rid0: sent[(rid0, 0)], rid1: sent[(rid1, 0)], rid2: (sent[(rid2, 0)] + 1) % 10}
    for rid, truth in truths.items():
        taken = httpx.post(f"{server.url}/api/models/tiny/feedback",
                           json={"prediction_id": rid, "label": str(truth)})
        assert taken.status_code == 200, taken.text
        assert taken.json()["class_index"] == truth and taken.json()["version"] == 1
    summary = httpx.get(f"{server.url}/api/models/tiny/feedback").json()
    [v1] = summary["versions"]
    assert v1["captured"] == len(sent) and v1["labelled"] == 3
    assert v1["accuracy"] == pytest.approx(2 / 3)
    assert sum(map(sum, v1["confusion_matrix"])) == 3 and v1["test_accuracy"] == 0.1
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'cnnlab_feedback_labelled{model="tiny",version="1"} 3.0' in metrics
    assert "cnnlab_captures_total" in metrics


def test_feedback_the_moment_the_answer_arrives_finds_its_picture(
        capturing: tuple[Server, str]) -> None:
    """A client labels each prediction as soon as it is answered, on a new connection, which
    the kernel may give to the other worker, before the answering worker's writer has
    stored the picture: the feedback waits for it instead of answering 404."""
    server, _ = capturing
    picture = dim_pictures(1, seed=99)
    for _ in range(12):
        answer = upload(server, picture)  # every call a new connection
        taken = httpx.post(f"{server.url}/api/models/tiny/feedback", timeout=30,
                           json={"prediction_id": answer.headers["x-prediction-id"],
                                 "label": 0})
        assert taken.status_code == 200, taken.text


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"request_id": "0" * 32, "label": "3"}, 404, "no captured picture"),
    ({"request_id": "x", "label": "eleven"}, 422, "not a class of this model"),
    ({"request_id": "x", "label": 10}, 422, "not a class of this model"),
    ({"prediction_id": "", "label": 1}, 422, "prediction_id"),
    ({"label": 1}, 422, "prediction_id"),
])
def test_bad_feedback_is_refused(capturing: tuple[Server, str], body: dict[str, object],
                                 status: int, words: str) -> None:
    server, _ = capturing
    r = httpx.post(f"{server.url}/api/models/tiny/feedback", json=body)
    assert r.status_code == status and words in r.json()["error"], r.text
    assert httpx.post(f"{server.url}/api/models/nope/feedback",
                      json={"request_id": "x", "label": 1}).status_code == 404


def test_feedback_must_be_declared_json(capturing: tuple[Server, str]) -> None:
    """A form on another site could post form-encoded labels into the training data."""
    server, _ = capturing
    r = httpx.post(f"{server.url}/api/models/tiny/feedback",
                   content=b'{"request_id": "x", "label": 1}',
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]


def test_without_capture_feedback_says_it_is_off(tiny_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "captures"
    with run_server(tiny_repo, tmp_path, capture_dir=str(store)) as server:
        assert upload(server, dim_pictures(1, seed=1)).status_code == 200
        r = httpx.post(f"{server.url}/api/models/tiny/feedback",
                       json={"request_id": "x", "label": 1})
        assert r.status_code == 409 and "capture is off" in r.json()["error"]
    assert not store.exists()  # off by default: nothing is written anywhere


def test_two_uploads_in_one_trace_are_two_predictions(capturing: tuple[Server, str]) -> None:
    """One caller's trace (a traceparent) or one X-Request-ID on two uploads: two
    prediction ids, and feedback on each labels its own picture only."""
    server, url = capturing
    same = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "x-request-id": "client-chosen"}
    answers = [httpx.post(f"{server.url}/api/models/tiny/predict", headers=same, timeout=30,
                          files=[("file", ("d.png", png(dim_pictures(1, seed=s)[0, ..., 0]),
                                           "image/png"))]) for s in (5, 6)]
    ids = [a.json()["prediction_id"] for a in answers]
    assert ids[0] != ids[1] and [a.headers["x-prediction-id"] for a in answers] == ids
    assert {a.headers["x-request-id"] for a in answers} == {"client-chosen"}
    for pid, label in zip(ids, (3, 4), strict=True):
        r = httpx.post(f"{server.url}/api/models/tiny/feedback", timeout=30,
                       json={"prediction_id": pid, "label": label})
        assert r.status_code == 200, r.text
    engine = sa.create_engine(url)
    with engine.connect() as db:
        labelled = dict(db.execute(sa.select(captures.c.prediction_id, captures.c.label)
                                   .where(captures.c.prediction_id.in_(ids))).tuples().all())
    engine.dispose()
    assert labelled == {ids[0]: 3, ids[1]: 4}
