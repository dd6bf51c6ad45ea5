"""Whether this process is draining: told to stop, still serving for
``CNNLAB_SHUTDOWN_DELAY_S`` so balancers take it out before it stops listening.

While draining, readiness answers 503 and every answer closes its connection, so a proxy
opens its next connection elsewhere instead of racing the worker's close of an idle
keep-alive connection (which loses a request sent at that moment)."""

from __future__ import annotations

import threading

_draining = threading.Event()


def start() -> None:
    _draining.set()


def active() -> bool:
    return _draining.is_set()
