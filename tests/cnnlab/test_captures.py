"""The capture store, on SQLite and on a real PostgreSQL server (the same SQLAlchemy Core
statements): retention, labels, the per-version summary, the export of labelled rows,
and workers opening one store at once."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from cnnlab.captures import Capture, CaptureStore
from tests.conftest import empty_store


def capture(rid: str, created: float, predicted: int = 1, version: int = 1) -> Capture:
    return Capture(rid, 0, created, "m", version, predicted, 0.9, 1.0, True, b"raw", b"png")


def test_retention_keeps_the_newest_rows_and_drops_old_ones(store_url: str) -> None:
    store = CaptureStore(store_url)
    now = time.time()
    store.add([capture(f"r{i}", now - 1000 + i) for i in range(10)])
    assert store.prune(max_rows=4, max_age_s=None) == 6
    assert [r.prediction_id for r in _all(store)] == ["r6", "r7", "r8", "r9"]
    assert store.prune(max_rows=100, max_age_s=992.5) == 2  # r6 and r7 are older
    assert [r.prediction_id for r in _all(store)] == ["r8", "r9"]


def _all(store: CaptureStore) -> list[Capture]:
    from cnnlab.captures import captures

    with store.engine.connect() as db:
        return [Capture(*row[1:12]) for row in db.execute(captures.select()
                                                          .order_by(captures.c.id))]


def test_labels_make_the_summary_and_the_export(store_url: str) -> None:
    store = CaptureStore(store_url)
    now = time.time()
    store.add([capture("a", now, predicted=3), capture("b", now, predicted=5),
               capture("c", now, predicted=5, version=2)])
    assert store.label("m", "a", 0, 3) == 1
    assert store.label("m", "b", 0, 4) == 1
    assert store.label("m", "zzz", 0, 4) is None      # never captured
    assert store.label("other", "a", 0, 4) is None    # another model's
    v1, v2 = store.feedback("m", 10)
    assert (v1.version, v1.captured, v1.labelled, v1.correct) == (1, 2, 2, 1)
    assert v1.confusion_matrix[3][3] == 1 and v1.confusion_matrix[4][5] == 1
    assert (v2.captured, v2.labelled, v2.accuracy) == (1, 0, None)
    assert [(label, png) for png, label, _ in store.labelled("m")] == [(3, b"png"),
                                                                      (4, b"png")]


def _open(url: str, start: object, results: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    try:
        CaptureStore(url).close()
        results.put("ok")  # type: ignore[attr-defined]
    except Exception as exc:
        results.put(repr(exc))  # type: ignore[attr-defined]


def test_workers_starting_together_all_open_a_new_store(store_url: str) -> None:
    """Service workers start at once on an empty database: each creates the tables
    unless another has and (SQLite) switches the file to write-ahead logging. Every
    one of them opens it, in each of several rounds on a fresh database."""
    forked = multiprocessing.get_context("fork")
    for round_ in range(4):
        # SQLite: a new file each round; PostgreSQL: its tables dropped after each
        url = f"{store_url}.{round_}" if store_url.startswith("sqlite") else store_url
        start, results = forked.Barrier(6), forked.Queue()
        workers = [forked.Process(target=_open, args=(url, start, results))
                   for _ in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        assert [results.get(timeout=5) for _ in workers] == ["ok"] * 6
        empty_store(url)


def test_retention_is_per_model_and_keeps_labelled_pictures_longest(store_url: str) -> None:
    store = CaptureStore(store_url)
    now = time.time()
    store.add([capture(f"r{i}", now - 100 + i) for i in range(6)])
    store.add([Capture("other", 0, now, "n", 1, 1, 0.9, None, None, b"raw", b"png")])
    assert store.label("m", "r0", 0, 1) == 1 and store.label("m", "r1", 0, 1) == 1
    assert store.prune(max_rows=3, max_age_s=None) == 3  # model m's r2..r4; n's one stays
    assert [r.prediction_id for r in _all(store)] == ["r0", "r1", "r5", "other"]
    assert store.prune(max_rows=1, max_age_s=None) == 2  # r5 first, then the older label
    assert [r.prediction_id for r in _all(store)] == ["r1", "other"]


def test_a_picture_is_stored_once_under_its_prediction(store_url: str) -> None:
    import sqlalchemy as sa

    store = CaptureStore(store_url)
    store.add([capture("p", time.time())])
    with pytest.raises(sa.exc.IntegrityError):
        store.add([capture("p", time.time())])


def test_a_first_revision_store_is_upgraded_with_its_rows(store_url: str) -> None:
    """A store made before migrations (the first schema, by create_all, no revision)
    with rows, two of them under one request id: opened, it is at the newest revision,
    every row and label kept, the duplicate made unique."""
    import sqlalchemy as sa

    from cnnlab import captures

    engine = sa.create_engine(store_url)
    first = sa.MetaData()
    table = sa.Table("captures", first, *(
        sa.Column("request_id" if c.name == "prediction_id" else c.name, c.type,
                  primary_key=c.primary_key, nullable=c.nullable)
        for c in captures.captures.columns),
        sa.Index("ix_captures_request", "request_id", "position"))
    first.create_all(engine)
    row = {"position": 0, "created": time.time(), "model": "m", "version": 1, "predicted": 1,
           "confidence": 0.9, "ood_score": None, "in_distribution": None, "original": b"raw",
           "seen_png": b"png", "label": None, "labelled": None}
    with engine.begin() as db:
        db.execute(table.insert(), [{**row, "request_id": "a", "label": 3},
                                    {**row, "request_id": "a"}, {**row, "request_id": "b"}])
    engine.dispose()

    store = CaptureStore(store_url)
    assert captures.revision(store.engine) == "0002"
    assert [r.prediction_id for r in _all(store)] == ["a", "a-2", "b"]
    assert [label for _, label, _ in store.labelled("m")] == [3]
    assert store.label("m", "a-2", 0, 5) == 1  # each row has its own key now
    assert sorted(label for _, label, _ in store.labelled("m")) == [3, 5]
