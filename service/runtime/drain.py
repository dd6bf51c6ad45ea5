"""Whether this process is draining: told to stop, still serving for
``CNNLAB_SHUTDOWN_DELAY_S`` so balancers take it out before it stops listening.

While draining, readiness answers 503 on HTTP and gRPC and every HTTP answer closes its
connection, so a proxy opens its next connection elsewhere instead of racing the worker's
close of an idle keep-alive connection (which loses a request sent at that moment).

Then the servers shut down together: uvicorn stops listening and finishes its requests,
and what registered with ``on_shutdown`` (the gRPC server) does the same in the same grace
period."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

_draining = threading.Event()
_on_shutdown: list[Callable[[float], Awaitable[object]]] = []


def start() -> None:
    _draining.set()


def active() -> bool:
    return _draining.is_set()


def on_shutdown(stop: Callable[[float], Awaitable[object]]) -> None:
    """Call ``stop(grace_s)`` when the worker shuts down, beside HTTP's own shutdown."""
    _on_shutdown.append(stop)


async def shut_down(grace_s: float) -> None:
    """Stop what registered, each with ``grace_s`` for its calls in flight."""
    start()
    await asyncio.gather(*(stop(grace_s) for stop in _on_shutdown))
