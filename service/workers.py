"""Several server processes on one port (``CNNLAB_WORKERS`` > 1).

One Python process has one event loop, and on a small CPU host that loop and TensorFlow
take turns on the cores: with one worker ~20 % of a 2-core machine stayed idle under load
(README, Speed). Several workers each run the whole service (models, batchers, event loop)
with TensorFlow on their share of the cores (``Settings.tf_threads``); uvicorn's
supervisor shares the listening socket among them and restarts one that dies.

Per-process state is made whole again through a run directory, created here and handed
to the workers in the environment: prometheus-client's multiprocess files (``/metrics``
adds every worker's values up), one Unix socket per worker, over which an admin action
taken by one worker reaches the others (``service.peers``), and each worker's count of
open connections, by which they take new connections in turn (``service.balance``). The
models directory itself is shared: every worker polls it and converges on the same
versions.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from service.config import Settings

APP_FACTORY = "service.main:create_app"
LOOP_FACTORY = "service.balance:new_loop"  # accepts in turn with the other workers


def pool_dir(settings: Settings) -> Path | None:
    """The run directory when this process is one of several workers, else None."""
    return settings.run_dir if settings.workers > 1 and settings.run_dir else None


def metrics_dir(run_dir: Path) -> Path:
    return run_dir / "metrics"


def peers_dir(run_dir: Path) -> Path:
    return run_dir / "peers"


def connections_dir(run_dir: Path) -> Path:
    return run_dir / "connections"


def _in_pool(settings: Settings, part: Callable[[Path], Path]) -> Path | None:
    """``part`` of the run directory when this process is one of several, else None."""
    pool = pool_dir(settings)
    return part(pool) if pool else None


def pool_metrics_dir(settings: Settings) -> Path | None:
    """Where every worker's metrics are."""
    return _in_pool(settings, metrics_dir)


def pool_connections_dir(settings: Settings) -> Path | None:
    """Where the workers publish their open-connection counts."""
    return _in_pool(settings, connections_dir)


def pool_peers_dir(settings: Settings) -> Path | None:
    """Where the workers' admin sockets are."""
    return _in_pool(settings, peers_dir)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` (a worker) still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options, the same for one process and for several workers."""
    return {"host": settings.host, "port": settings.port, "log_config": None,
            "access_log": False, "timeout_graceful_shutdown": 30}


def run(settings: Settings) -> None:
    """Serve with ``settings.workers`` processes until stopped (SIGTERM/SIGINT: every
    worker drains its in-flight requests first, as a single process does)."""
    with tempfile.TemporaryDirectory(prefix="cnnlab-") as tmp:  # mode 0700
        run_dir = Path(tmp)
        metrics_dir(run_dir).mkdir()
        peers_dir(run_dir).mkdir()
        # read by the workers' Settings and, before it is imported there, prometheus-client
        os.environ["CNNLAB_RUN_DIR"] = str(run_dir)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(run_dir))
        uvicorn.run(APP_FACTORY, factory=True, workers=settings.workers, loop=LOOP_FACTORY,
                    **server_options(settings))
