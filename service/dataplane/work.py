"""Bounded pools for CPU-heavy steps: decoding big pictures, parsing big JSON bodies,
image operations, inspection signatures, encoding big answers.

A ``WorkPool`` runs a function on one of its threads, never on the event loop. It admits
at most ``threads`` tasks at once and ``queue`` more waiting; one more is refused at once
(``Overloaded``: 503 + Retry-After, as the batcher refuses predictions). A task's wait and
run together get what is left of its request's deadline (``service.dataplane.deadline``;
the request timeout when none was started): ``TimedOut``. A thread cannot be stopped, so a
task that times out keeps its thread until it ends (its slot is freed only then and the
pool never runs more than ``threads`` tasks); work that loops over pictures checks the
deadline between them, so it ends soon after.

The pool's threads run at a lower CPU priority (``nice``) than the event loop and the
model's threads: when heavy requests and predictions compete for the cores, the kernel
gives them to the predictions first.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from service.errors import Overloaded, TimedOut
from service.runtime import deadline
from service.runtime.tuning import lower_priority

T = TypeVar("T")


class WorkPool:
    def __init__(self, name: str, threads: int, queue: int, timeout_s: float) -> None:
        self.name = name
        self.threads = threads
        self.queue = queue
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=name,
                                            initializer=lower_priority)
        self._slots: asyncio.Semaphore | None = None  # made in the event loop that uses it
        self._admitted = 0  # running + waiting

    @property
    def admitted(self) -> int:
        return self._admitted

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a pool thread; ``Overloaded`` when the pool is full,
        ``TimedOut`` after the request timeout."""
        if self._admitted >= self.threads + self.queue:
            raise Overloaded(f"too much {self.name} work queued on this worker "
                             f"({self._admitted} tasks); retry")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.threads)
        slots = self._slots
        loop = asyncio.get_running_loop()
        self._admitted += 1
        started = False
        timeout = deadline.remaining(self.timeout_s)
        try:
            async with asyncio.timeout(timeout):
                await slots.acquire()
                started = True
                # (in the request's context: its trace continues on the pool thread)
                task: Future[T] = self._executor.submit(contextvars.copy_context().run, fn,
                                                        *args)
                # the slot is given back when the work really ends, even after a timeout
                task.add_done_callback(lambda _: loop.call_soon_threadsafe(self._done, slots))
                return await asyncio.wrap_future(task)
        except TimeoutError:
            raise TimedOut(f"{self.name} did not finish within {timeout:.3g} s") from None
        finally:
            if not started:
                self._admitted -= 1

    def _done(self, slots: asyncio.Semaphore) -> None:
        self._admitted -= 1
        slots.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def run_small_inline(pool: WorkPool, cost: int, inline_limit: int,
                           fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` inline when its ``cost`` is at most ``inline_limit`` (cheaper than the hop
    to a thread and bounded), else on ``pool``."""
    if cost <= inline_limit:
        return fn(*args)
    return await pool.run(functools.partial(fn, *args))
