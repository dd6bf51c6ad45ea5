"""Metrics of several workers added up: a worker that died without a word (SIGKILL) stops
counting in the live gauges; each worker's open connections are shown."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from service.balance import Counts
from service.metrics import Metrics, exposition

WORKER = """
from prometheus_client import CollectorRegistry, Gauge
g = Gauge("cnnlab_queue_depth", "images waiting", ["model", "version"],
          registry=CollectorRegistry(), multiprocess_mode="livesum")
g.labels("tiny", "1").set({depth})
"""


def worker(directory: Path, depth: int, *, stay: bool) -> subprocess.Popen[bytes]:
    """A process that sets its queue-depth gauge, then exits (or stays, reading stdin)."""
    code = WORKER.format(depth=depth) + ("import sys; sys.stdin.read()" if stay else "")
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)})


def queue_depth(text: bytes) -> float:
    [line] = [ln for ln in text.decode().splitlines()
              if ln.startswith('cnnlab_queue_depth{model="tiny"')]
    return float(line.rsplit(" ", 1)[1])


def test_the_live_gauges_of_a_dead_worker_are_dropped(tmp_path: Path) -> None:
    alive = worker(tmp_path, 3, stay=True)
    dead = worker(tmp_path, 5, stay=False)
    dead.wait()
    deadline = time.monotonic() + 30
    try:
        # (the live one may not have written its value yet: wait until it shows)
        while not list(tmp_path.glob(f"gauge_livesum_{alive.pid}.db")) or queue_depth(
                text := exposition(Metrics(), tmp_path)) < 3:
            assert alive.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        assert alive.stdin is not None
        alive.stdin.close()
        alive.wait()
    assert queue_depth(text) == 3  # 3 + 5 if the dead worker still counted
    assert not list(tmp_path.glob(f"gauge_livesum_{dead.pid}.db"))


def test_each_workers_open_connections_are_shown(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    mine, peer = Counts(tmp_path / "conns", os.getpid()), Counts(tmp_path / "conns", os.getppid())
    mine.publish(7)
    peer.publish(9)
    text = exposition(Metrics(), tmp_path / "metrics", tmp_path / "conns").decode()
    assert f'cnnlab_worker_open_connections{{pid="{os.getpid()}"}} 7.0' in text
    assert f'cnnlab_worker_open_connections{{pid="{os.getppid()}"}} 9.0' in text
    peer.close()  # a worker that stops serving leaves the list
    text = exposition(Metrics(), tmp_path / "metrics", tmp_path / "conns").decode()
    assert f'pid="{os.getppid()}"' not in text
