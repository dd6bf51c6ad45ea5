"""The capture writer: off the caller's thread, bounded, counting what it drops, and
flushing on demand."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from cnnlab.captures import Capture, CaptureStore
from service.capture import writer as writer_module
from service.capture.writer import CaptureWriter, Served


def capture(rid: str, created: float) -> Capture:
    return Capture(rid, 0, created, "m", 1, 1, 0.9, 1.0, True, b"raw", b"png")


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
    items = [Served(capture(f"r{i}", time.time()), np.zeros((28, 28), np.uint8))
             for i in range(10)]
    writer = CaptureWriter(store, 1.0, max_bytes=3 * items[0].size, max_rows=100,
                           max_age_s=None, on_written=written.append,
                           on_dropped=dropped.append)
    for item in items:
        writer.offer([item])  # never waits for the store: what does not fit is dropped
    assert not gate.is_set() and sum(dropped) == 7  # the queue holds three pictures' bytes
    gate.set()
    writer.close()
    assert sum(written) + sum(dropped) == 10
    assert CaptureStore(store_url).feedback("m", 10)[0].captured == 3


def test_flush_writes_what_is_queued_without_waiting_for_a_batch(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Feedback on a prediction answered a moment ago finds its row: the writer, which
    otherwise lets a batch gather (here for a minute), writes at once when asked."""
    monkeypatch.setattr(writer_module, "GATHER_S", 60.0)
    store = CaptureStore(store_url)
    writer = CaptureWriter(store, 1.0, max_bytes=2**20, max_rows=100, max_age_s=None)
    writer.offer([Served(capture("now", time.time()), np.zeros((28, 28), np.uint8))])
    assert writer.flush(timeout_s=5)
    assert store.label("m", "now", 0, 1) == 1
    assert writer.flush(timeout_s=0)  # nothing pending: at once
    writer.close()
