"""Server processes on one port.

Each worker is a whole service (models, batchers, event loop) on a listening socket of its
own, bound to the same address with ``SO_REUSEPORT``: the kernel spreads new connections
over the sockets, as nginx's ``reuseport`` does. A worker listens only once its models are
loaded and warm (uvicorn starts the app before it serves the socket), so no connection
waits on a worker that is starting.

With more than one worker, ``run`` is a small supervisor: it starts the workers, starts a
new one when one dies, and stops them all on SIGTERM/SIGINT (each drains its in-flight
requests first). The workers share prometheus-client's multiprocess files (``/metrics``
adds every worker up) in a run directory handed to them in the environment; what the
admin sets lives in the model repository, shared with every replica
(``service.serving.admin_state``).
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from cnnlab.quiet import start_up_lines_dropped
from service.runtime import drain
from service.runtime.connections import GuardedHttpToolsProtocol
from service.runtime.metrics import worker_exited
from service.runtime.settings import Settings, get_settings, gpu_present

log = logging.getLogger("cnnlab.workers")

APP_FACTORY = "service.app:create_app"
RESTART_PAUSE_S = 1.0  # a worker that keeps crashing is restarted at most once a second


def metrics_dir(run_dir: Path) -> Path:
    return run_dir / "metrics"


def pool_dir(settings: Settings) -> Path | None:
    """The run directory when this process is one of several workers, else None."""
    return settings.run_dir if settings.workers > 1 and settings.run_dir else None


def pool_metrics_dir(settings: Settings) -> Path | None:
    """Where every worker's metrics are (None: a single process)."""
    run_dir = pool_dir(settings)
    return metrics_dir(run_dir) if run_dir else None


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` beside the other workers' (``SO_REUSEPORT``); it
    starts listening when the server starts serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class BoundedShutdownServer(uvicorn.Server):
    """uvicorn's server, whose shutdown drains first and always ends. The first
    SIGTERM/SIGINT starts draining (``service.runtime.drain``) for ``delay_s``, then
    uvicorn's graceful shutdown; it also arms ``faulthandler``'s watchdog, which ends the
    process (after printing every thread's stack) if it is still alive ``delay_s +
    grace_s`` later — say a thread stuck in a long model or OpenCV call, which the
    interpreter would otherwise wait for at exit. The watchdog is a C thread: it fires
    even while Python code cannot run. A second signal stops at once."""

    def __init__(self, config: uvicorn.Config, delay_s: float, grace_s: float) -> None:
        super().__init__(config)
        self.delay_s = delay_s
        self.grace_s = grace_s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's graceful shutdown, and the gRPC server's beside it: both stop taking
        calls and finish those in flight within the same period."""
        drain_s = float(self.config.timeout_graceful_shutdown or self.grace_s)
        await asyncio.gather(drain.shut_down(drain_s), super().shutdown(sockets))

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if drain.active() or self.delay_s <= 0:
            if not self.should_exit and not drain.active():
                faulthandler.dump_traceback_later(self.grace_s, exit=True)
            super().handle_exit(sig, frame)
            return
        drain.start()
        faulthandler.dump_traceback_later(self.delay_s + self.grace_s, exit=True)
        log.info("draining for %g s before shutting down", self.delay_s)
        threading.Timer(self.delay_s, super().handle_exit, (sig, frame)).start()


def serve_one(settings: Settings) -> None:
    """Run one worker in this process until it is stopped."""
    with start_up_lines_dropped(gpu_present()):  # TensorFlow's import and GPU probing
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    try:
        sock = listening_socket(settings.host, settings.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
        sys.exit(STARTUP_FAILURE)
    # in-flight requests get most of the grace period, the lifespan's shutdown the rest
    drain_s = max(1, int(settings.shutdown_grace_s * 0.8))
    config = uvicorn.Config(APP_FACTORY, factory=True, log_config=None, access_log=False,
                            timeout_graceful_shutdown=drain_s, http=GuardedHttpToolsProtocol,
                            timeout_keep_alive=settings.keep_alive_timeout_s)
    BoundedShutdownServer(config, settings.shutdown_delay_s,
                          settings.shutdown_grace_s).run(sockets=[sock])


def _worker_main() -> None:
    """A worker process's entry point (its settings come from the environment)."""
    serve_one(get_settings())


class Supervisor:
    """Keeps ``count`` worker processes running until SIGTERM/SIGINT."""

    def __init__(self, count: int, run_dir: Path, stop_s: float) -> None:
        self.count = count
        self.run_dir = run_dir
        self.stop_s = stop_s  # a worker's drain delay and grace period
        self.workers: list[BaseProcess] = []
        self.stopping = False
        self._context = multiprocessing.get_context("spawn")  # no TensorFlow state forked

    def _start_worker(self) -> BaseProcess:
        process = self._context.Process(target=_worker_main, name="cnnlab-worker")
        process.start()
        return process

    def _stop(self, signum: int, _: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        """Supervise until stopped; the exit code (``STARTUP_FAILURE`` if a worker could not
        start at all, e.g. the port is taken)."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.workers = [self._start_worker() for _ in range(self.count)]
        code = 0
        while not self.stopping:
            wait([w.sentinel for w in self.workers], timeout=0.5)
            for i, worker in enumerate(self.workers):
                if worker.is_alive() or self.stopping:
                    continue
                worker.join()
                if worker.pid is not None:
                    worker_exited(metrics_dir(self.run_dir), worker.pid)
                if worker.exitcode == STARTUP_FAILURE:
                    log.error("worker %s could not start; stopping", worker.pid)
                    self.stopping, code = True, STARTUP_FAILURE
                    break
                log.warning("worker %s exited (code %s); starting a new one", worker.pid,
                            worker.exitcode)
                time.sleep(RESTART_PAUSE_S)
                self.workers[i] = self._start_worker()
        self._shut_down()
        return code

    def _shut_down(self) -> None:
        """SIGTERM every worker (each drains its in-flight requests and ends itself after
        the grace period), then wait; one still alive a moment later is killed."""
        for worker in self.workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_s + 2
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                worker.kill()
                worker.join()


def run(settings: Settings) -> int:
    """Serve with ``settings.workers`` processes until stopped; the exit code."""
    if settings.workers == 1:
        serve_one(settings)
        return 0
    with tempfile.TemporaryDirectory(prefix="cnnlab-") as tmp:  # mode 0700
        run_dir = Path(tmp)
        metrics_dir(run_dir).mkdir()
        # read by the workers' Settings and, before it is imported there, prometheus-client
        os.environ["CNNLAB_RUN_DIR"] = str(run_dir)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(run_dir))
        return Supervisor(settings.workers, run_dir,
                          settings.shutdown_delay_s + settings.shutdown_grace_s).run()
