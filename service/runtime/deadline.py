"""One deadline per request, across all its parts and every thread that works for it.

The face that receives a request starts its deadline (the HTTP middleware, the gRPC call
wrapper); the compute and inspection pools wait at most until it, and work running on a
pool thread checks it between pictures, so a request's work stops at its deadline instead
of running on after the client got its 503/DEADLINE_EXCEEDED. The deadline lives in a
context variable: the pools run their work in a copy of the request's context.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

from service.errors import TimedOut

_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("deadline", default=None)


@contextlib.contextmanager
def started(timeout_s: float) -> Iterator[None]:
    """The request running in this block must finish within ``timeout_s`` seconds."""
    token = _DEADLINE.set((time.monotonic() + timeout_s, timeout_s))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining(default_s: float) -> float:
    """Seconds left before the request's deadline (``default_s`` when none was started)."""
    current = _DEADLINE.get()
    return default_s if current is None else current[0] - time.monotonic()


def check() -> None:
    """``TimedOut`` once the request's deadline has passed (a no-op without one)."""
    current = _DEADLINE.get()
    if current is not None and time.monotonic() > current[0]:
        raise TimedOut(f"the request did not finish within {current[1]:g} s")
