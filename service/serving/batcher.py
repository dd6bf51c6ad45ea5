"""Dynamic batching: coalesce concurrent requests for one model version into one call.

The batcher takes arrays (``[n, H, W, C]`` model inputs) and gives back the model's outputs
for them (arrays by output name, ``n`` rows each); it knows nothing of HTTP or pictures.

Requests put their images on a bounded queue; a batch worker task takes everything
queued (up to ``max_batch_size`` images), optionally waits ``max_wait`` for more while the
batch is not full, and runs one signature call on the inference executor, off the event
loop (``max_concurrent_batches`` workers, like TF Serving's ``num_batch_threads``). While
that call runs, new requests keep queueing, so under load batches grow by themselves; an
idle model answers a lone request at once. A full queue refuses work
(``QueueFull``, answered 503 + Retry-After) instead of growing without limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np
from opentelemetry.trace import SpanContext

from service.runtime import tracing
from service.serving.calls import Outputs, joined


class QueueFull(Exception):
    """The queue cannot take these images now; the client should retry later."""


class BatcherClosed(Exception):
    """The version is being unloaded and takes no new work."""


@dataclass
class _Item:
    images: np.ndarray                # [n, ...], part of one request
    future: asyncio.Future[Outputs]
    enqueued: float = field(default_factory=time.perf_counter)
    # the request's span and when it queued, for its trace (None: tracing is off)
    trace: SpanContext | None = field(default_factory=tracing.current)
    enqueued_ns: int = field(default_factory=time.time_ns)

    @property
    def n(self) -> int:
        return len(self.images)


RunFn = Callable[[np.ndarray], Outputs]
# after each batch: its images, its model call's seconds, each request's wait for it
ObserveFn = Callable[[int, float, list[float]], None]


class DynamicBatcher:
    def __init__(self, run: RunFn, executor: Executor, *, max_batch_size: int,
                 max_wait_s: float, max_queue_images: int, max_concurrent_batches: int = 1,
                 observe: ObserveFn | None = None,
                 on_depth: Callable[[int], None] | None = None,
                 on_shed: Callable[[], None] | None = None) -> None:
        self._run = run
        self._executor = executor
        self.max_batch_size = max_batch_size
        self.max_concurrent_batches = max_concurrent_batches
        self.max_wait_s = max_wait_s
        self.max_queue_images = max_queue_images
        self._observe = observe
        self._on_depth = on_depth
        self._on_shed = on_shed
        self._queue: deque[_Item] = deque()
        self._queued_images = 0
        self._wakeup = asyncio.Event()
        self._closed = False
        self._workers: list[asyncio.Task[None]] = []

    @property
    def queued_images(self) -> int:
        return self._queued_images

    def start(self) -> None:
        if not self._workers:
            loop = asyncio.get_running_loop()
            self._workers = [loop.create_task(self._collect())
                             for _ in range(self.max_concurrent_batches)]

    async def close(self) -> None:
        """Stop taking work, finish what is queued, then stop the collector."""
        self._closed = True
        self._wakeup.set()
        if self._workers:
            await asyncio.gather(*self._workers)

    async def submit(self, images: np.ndarray, timeout_s: float | None = None) -> Outputs:
        """Outputs for ``images`` (``[n, ...]``); large inputs are split into batches."""
        n = len(images)
        self._admit(n)
        loop = asyncio.get_running_loop()
        chunks = [images[i:i + self.max_batch_size] for i in range(0, n, self.max_batch_size)]
        return await self._wait([_Item(c, loop.create_future()) for c in chunks], timeout_s)

    def _admit(self, n: int) -> None:
        if self._closed:
            raise BatcherClosed("model version is unloading")
        if self._queued_images + n > self.max_queue_images:
            if self._on_shed:
                self._on_shed()
            raise QueueFull(f"queue full ({self._queued_images} images waiting)")

    async def _wait(self, items: list[_Item], timeout_s: float | None) -> Outputs:
        for item in items:
            self._queue.append(item)
            self._queued_images += item.n
        self._wakeup.set()  # (the depth gauge is set when a batch is taken: once a batch)
        try:
            # asyncio.timeout, not wait_for: wait_for wraps the await in a new Task
            async with asyncio.timeout(timeout_s):
                if len(items) == 1:
                    return await items[0].future
                return joined(await asyncio.gather(*(i.future for i in items)))
        except (TimeoutError, asyncio.CancelledError):
            for item in items:
                item.future.cancel()  # the collector skips cancelled items
            raise

    def _depth(self) -> None:
        if self._on_depth:
            self._on_depth(self._queued_images)

    def _take(self, batch: list[_Item], size: int) -> int:
        """Move queued items into ``batch`` while they fit; returns the new image count."""
        while self._queue:
            item = self._queue[0]
            if item.future.done():  # cancelled (timed out) while queued
                self._queue.popleft()
                self._queued_images -= item.n
                continue
            if batch and size + item.n > self.max_batch_size:
                break
            self._queue.popleft()
            self._queued_images -= item.n
            batch.append(item)
            size += item.n
        return size

    async def _collect(self) -> None:
        """One batch worker (``max_concurrent_batches`` of them run): take what is queued,
        run it, repeat. A worker goes straight from delivering one batch to taking the
        next, so the model never waits behind the event loop's other work."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch: list[_Item] = []
            size = self._take(batch, 0)
            if self.max_wait_s > 0 and size < self.max_batch_size:
                size = await self._fill(loop, batch, size)
            self._depth()
            if batch:  # (empty when every queued request had timed out)
                await self._execute(loop, batch, size)

    async def _fill(self, loop: asyncio.AbstractEventLoop, batch: list[_Item],
                    size: int) -> int:
        """Wait up to ``max_wait_s`` for more images while the batch is not full."""
        deadline = loop.time() + self.max_wait_s
        while size < self.max_batch_size and (left := deadline - loop.time()) > 0:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), left)
            except TimeoutError:
                break
            size = self._take(batch, size)
        return size

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Item],
                       size: int) -> None:
        inputs = (batch[0].images if len(batch) == 1
                  else np.concatenate([item.images for item in batch]))
        started, started_ns = time.perf_counter(), time.time_ns()
        try:
            outputs = await loop.run_in_executor(self._executor, self._run, inputs)
        except Exception as exc:  # hand the failure to every waiting request
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        if self._observe:
            self._observe(size, time.perf_counter() - started,
                          [started - item.enqueued for item in batch])
        if tracing.enabled():
            tracing.batch_spans([(item.trace, item.enqueued_ns) for item in batch],
                                started_ns, time.time_ns(), size)
        offset = 0
        for item in batch:
            if not item.future.done():
                item.future.set_result({k: v[offset:offset + item.n]
                                        for k, v in outputs.items()})
            offset += item.n
