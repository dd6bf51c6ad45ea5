"""Metrics of several workers added up: a worker that died stops counting in the live
gauges; the admin state generation is the lowest any live worker applied."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from service.runtime.metrics import Metrics, applied_generation, exposition, worker_exited

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
    assert queue_depth(text) == 8  # until the supervisor says the dead one is gone
    worker_exited(tmp_path, dead.pid)
    assert queue_depth(exposition(Metrics(), tmp_path)) == 3
    assert not list(tmp_path.glob(f"gauge_livesum_{dead.pid}.db"))


GENERATION = """
from prometheus_client import CollectorRegistry, Gauge
g = Gauge("cnnlab_admin_state_generation", "applied", registry=CollectorRegistry(),
          multiprocess_mode="livemin")
g.set({generation})
"""


def test_the_admin_generation_is_the_lowest_any_live_worker_applied(tmp_path: Path) -> None:
    pids = {}
    for generation in (4, 2):
        proc = subprocess.Popen([sys.executable, "-c", GENERATION.format(generation=generation)],
                                env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
        assert proc.wait() == 0
        pids[generation] = proc.pid
    assert applied_generation(tmp_path) == 2
    worker_exited(tmp_path, pids[2])  # the supervisor's call when a worker dies
    assert applied_generation(tmp_path) == 4
