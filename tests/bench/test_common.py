"""bench/common.py's rate of sessions run side by side."""

from __future__ import annotations

import threading
import time

from bench.common import side_by_side_rate


def test_side_by_side_runs_each_call_in_its_own_thread_and_counts_every_call() -> None:
    calls: dict[str, list[int]] = {"a": [], "b": []}

    def call(name: str) -> None:
        calls[name].append(threading.get_ident())
        time.sleep(0.005)

    started = time.perf_counter()
    rate = side_by_side_rate([lambda: call("a"), lambda: call("b")], seconds=0.2)
    elapsed = time.perf_counter() - started
    assert calls["a"] and calls["b"]
    assert set(calls["a"]).isdisjoint(calls["b"])  # two threads, one loop each
    done = len(calls["a"]) + len(calls["b"])
    # 256 images a call over the loops' own time, which the call's time contains
    assert rate >= 256 * done / elapsed
