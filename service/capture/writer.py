"""Capture off the request path: a request samples its pictures and hands them to a
queue bounded in bytes (no I/O, no encoding); one thread per worker encodes the pictures
the model saw as PNG and writes them to the store in batches, and applies the retention
bounds. When the store is slow and the queue holds its bytes, pictures are dropped and
counted: capture never slows or fails a prediction, and never holds more than its bytes
(each picture keeps its whole upload, up to the body limit)."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from cnnlab.captures import Capture, CaptureStore
from service.errors import first_line
from service.images import render
from service.runtime.tuning import lower_priority

log = logging.getLogger(__name__)

BATCH = 512          # pictures written in one transaction at most
GATHER_S = 0.25      # the writer wakes at most this often: one wake-up (and GIL hand-over)
                     # per batch, not per picture
PRUNE_EVERY_S = 60.0


@dataclass(frozen=True)
class Served:
    """One served upload as the request hands it over: its row, but for the picture the
    model saw, still pixels (``[H, W]`` uint8), which the writer encodes as PNG."""

    row: Capture                  # seen_png empty; created: when it was served
    seen: np.ndarray

    @property
    def size(self) -> int:
        """Bytes it holds while queued."""
        return len(self.row.original) + self.seen.nbytes


class CaptureWriter:
    def __init__(self, store: CaptureStore, rate: float, max_bytes: int, max_rows: int,
                 max_age_s: float | None, on_written: Callable[[int], None] | None = None,
                 on_dropped: Callable[[int], None] | None = None) -> None:
        self.store = store
        self.rate = rate
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self._queue: queue.Queue[Served | None] = queue.Queue()  # bounded by _held
        self._held = 0  # bytes of the pictures queued and not yet written
        self._on_written = on_written
        self._on_dropped = on_dropped
        # pictures queued so far, and of them those written (or lost): flush() waits for
        # the second to reach the first
        self._queued = 0
        self._settled = 0
        self._progress = threading.Condition()
        self._hurry = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    def sampled(self) -> bool:
        """Whether this request's pictures are kept (the sampling rate)."""
        return self.rate >= 1.0 or random.random() < self.rate

    def offer(self, items: Sequence[Served]) -> None:
        """Queue ``items`` for the store, or drop (and count) what does not fit in the
        queue's bytes now."""
        for i, item in enumerate(items):
            with self._progress:
                fits = self._held + item.size <= self.max_bytes
                if fits:
                    self._held += item.size
                    self._queued += 1
            if not fits:
                if self._on_dropped:
                    self._on_dropped(len(items) - i)
                return
            self._queue.put_nowait(item)

    def flush(self, timeout_s: float = 2.0) -> bool:
        """Write what is queued now without waiting for a batch to gather (feedback on a
        prediction that just happened); whether it was written within ``timeout_s``."""
        with self._progress:
            target = self._queued
            if self._settled >= target:
                return True
            self._hurry.set()
            return self._progress.wait_for(lambda: self._settled >= target, timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued (within ``timeout_s``), then stop."""
        self._queue.put(None)
        self._thread.join(timeout_s)  # (a stuck store: stop waiting for it)
        self.store.close()

    def _run(self) -> None:
        lower_priority()  # the event loop and the model come first
        pruned = 0.0
        while True:
            item = self._queue.get()
            batch = [] if item is None else [item]
            if item is not None:
                self._hurry.wait(GATHER_S)  # let a batch gather (unless a flush hurries)
                self._hurry.clear()
            while item is not None and len(batch) < BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    batch.append(item)
            self._write(batch)
            with self._progress:
                self._settled += len(batch)
                self._held -= sum(s.size for s in batch)
                self._progress.notify_all()
            if time.monotonic() - pruned > PRUNE_EVERY_S:
                pruned = time.monotonic()
                self._prune()
            if item is None:
                return

    def _write(self, batch: list[Served]) -> None:
        if not batch:
            return
        try:
            self.store.add([_row(s) for s in batch])
        except Exception as exc:  # a store that fails loses the batch, never the service
            log.warning("capture: %d pictures not stored (%s)", len(batch),
                        first_line(exc, 200))
            if self._on_dropped:
                self._on_dropped(len(batch))
            return
        if self._on_written:
            self._on_written(len(batch))

    def _prune(self) -> None:
        try:
            self.store.prune(self.max_rows, self.max_age_s)
        except Exception as exc:  # retried at the next interval
            log.warning("capture: retention not applied (%s)", first_line(exc, 200))


def _row(s: Served) -> Capture:
    ok, png = cv2.imencode(".png", render.viewable(s.seen))
    return replace(s.row, seen_png=png.tobytes() if ok else b"")
