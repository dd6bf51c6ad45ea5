"""The capture store, on SQLite and on a real PostgreSQL server (the same SQLAlchemy Core
statements): retention, labels, the per-version summary, the export of labelled rows;
and the writer: off the caller's thread, bounded, counting what it drops."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from cnnlab.captures import Capture, CaptureStore
from service.capture import writer as writer_module
from service.capture.writer import CaptureWriter, Served


def capture(rid: str, created: float, predicted: int = 1, version: int = 1) -> Capture:
    return Capture(rid, 0, created, "m", version, predicted, 0.9, 1.0, True, b"raw", b"png")


def test_retention_keeps_the_newest_rows_and_drops_old_ones(store_url: str) -> None:
    store = CaptureStore(store_url)
    now = time.time()
    store.add([capture(f"r{i}", now - 1000 + i) for i in range(10)])
    assert store.prune(max_rows=4, max_age_s=None) == 6
    assert [r.request_id for r in _all(store)] == ["r6", "r7", "r8", "r9"]
    assert store.prune(max_rows=100, max_age_s=992.5) == 2  # r6 and r7 are older
    assert [r.request_id for r in _all(store)] == ["r8", "r9"]


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


def test_the_writer_stores_in_its_own_thread_and_drops_what_does_not_fit(
        store_url: str) -> None:
    store = CaptureStore(store_url)
    gate = threading.Event()
    real_add = store.add

    def slow_add(rows: list[Capture]) -> None:
        gate.wait(10)  # a stuck store
        real_add(rows)

    store.add = slow_add  # type: ignore[method-assign]
    written, dropped = [], []
    writer = CaptureWriter(store, 1.0, max_queue=3, max_rows=100, max_age_s=None,
                           on_written=written.append, on_dropped=dropped.append)
    item = Served(capture("r", time.time()), np.zeros((28, 28), np.uint8))
    for _ in range(10):
        writer.offer([item])  # never waits for the store: what does not fit is dropped
    assert not gate.is_set() and sum(dropped) >= 6  # the queue holds 3, the writer 1
    gate.set()
    writer.close()
    assert sum(written) + sum(dropped) == 10
    assert len(list(CaptureStore(store_url).feedback("m", 10))) == 1


def test_flush_writes_what_is_queued_without_waiting_for_a_batch(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Feedback on a prediction answered a moment ago finds its row: the writer, which
    otherwise lets a batch gather (here for a minute), writes at once when asked."""
    monkeypatch.setattr(writer_module, "GATHER_S", 60.0)
    store = CaptureStore(store_url)
    writer = CaptureWriter(store, 1.0, max_queue=10, max_rows=100, max_age_s=None)
    writer.offer([Served(capture("now", time.time()), np.zeros((28, 28), np.uint8))])
    assert writer.flush(timeout_s=5)
    assert store.label("m", "now", 0, 1) == 1
    assert writer.flush(timeout_s=0)  # nothing pending: at once
    writer.close()
