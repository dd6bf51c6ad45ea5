from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.serving.batcher import BatcherClosed, DynamicBatcher, QueueFull
from service.serving.calls import Outputs

pytestmark = pytest.mark.anyio


class Recorder:
    """A fake model with two outputs (its input doubled, and each row's sum), recording
    every batch size, optionally slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.sizes: list[int] = []
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, x: np.ndarray) -> Outputs:
        self.gate.wait(5)
        time.sleep(self.delay)
        self.sizes.append(len(x))
        return {"double": x * 2, "sum": x.sum(axis=1)}


def make(run: Recorder, **kw: object) -> DynamicBatcher:
    opts = {"max_batch_size": 8, "max_wait_s": 0.0, "max_queue_images": 100, **kw}
    return DynamicBatcher(run, ThreadPoolExecutor(1), **opts)  # type: ignore[arg-type]


async def held(width: int = 1, **kw: object,
               ) -> tuple[Recorder, DynamicBatcher, asyncio.Task[Outputs]]:
    """A started batcher whose first call (one row of ``width``) is held in the model, so
    whatever is submitted next queues; ``run.gate.set()`` lets it go."""
    run = Recorder()
    run.gate.clear()
    b = make(run, **kw)
    b.start()
    first = asyncio.create_task(b.submit(np.zeros((1, width), np.float32)))
    await asyncio.sleep(0.05)  # first is now running (held), queue empty
    return run, b, first


async def test_each_request_gets_its_own_rows_of_every_output_back() -> None:
    b = make(Recorder(delay=0.01))
    b.start()
    inputs = [np.full((n, 2), i, np.float32) for i, n in enumerate([1, 3, 2, 1])]
    outs = await asyncio.gather(*(b.submit(x) for x in inputs))
    for x, y in zip(inputs, outs, strict=True):
        np.testing.assert_array_equal(y["double"], x * 2)
        np.testing.assert_array_equal(y["sum"], x.sum(axis=1))
    await b.close()


async def test_concurrent_requests_are_coalesced_while_the_model_is_busy() -> None:
    run = Recorder()
    run.gate.clear()  # hold the first call so the rest pile up
    b = make(run)
    b.start()
    tasks = [asyncio.create_task(b.submit(np.ones((1, 2), np.float32))) for _ in range(9)]
    await asyncio.sleep(0.05)
    run.gate.set()
    await asyncio.gather(*tasks)
    assert sum(run.sizes) == 9
    assert sorted(run.sizes) == [1, 8]  # 9 requests, 2 calls: never more than max_batch_size
    await b.close()


async def test_max_wait_fills_a_batch_when_idle() -> None:
    run = Recorder()
    b = make(run, max_wait_s=0.2)
    b.start()

    async def late() -> Outputs:
        await asyncio.sleep(0.02)
        return await b.submit(np.ones((1, 2), np.float32))

    await asyncio.gather(b.submit(np.ones((1, 2), np.float32)), late())
    assert run.sizes == [2]
    await b.close()


async def test_large_requests_are_split_to_the_max_batch_size() -> None:
    run = Recorder()
    b = make(run)
    b.start()
    x = np.arange(20, dtype=np.float32).reshape(20, 1)
    out = await b.submit(x)  # more rows than a batch: split, and joined again per output
    np.testing.assert_array_equal(out["double"], x * 2)
    np.testing.assert_array_equal(out["sum"], x.sum(axis=1))
    assert max(run.sizes) <= 8 and sum(run.sizes) == 20
    await b.close()


async def test_full_queue_is_refused_not_grown_and_counted() -> None:
    shed: list[None] = []
    run, b, first = await held(max_queue_images=4, on_shed=lambda: shed.append(None))
    queued = asyncio.create_task(b.submit(np.ones((4, 1), np.float32)))
    await asyncio.sleep(0.02)
    with pytest.raises(QueueFull):
        await b.submit(np.ones((1, 1), np.float32))
    assert len(shed) == 1  # (cnnlab_shed_total)
    run.gate.set()
    await asyncio.gather(first, queued)
    await b.close()


async def test_timeout_drops_the_request_from_the_queue() -> None:
    run, b, first = await held()
    with pytest.raises(TimeoutError):
        await b.submit(np.ones((3, 1), np.float32), timeout_s=0.05)
    run.gate.set()
    await first
    await asyncio.sleep(0.05)
    assert run.sizes == [1]  # the timed-out rows were never computed
    assert b.queued_images == 0
    await b.close()


async def test_model_errors_reach_every_waiting_request() -> None:
    def broken(_: np.ndarray) -> Outputs:
        raise RuntimeError("kaput")

    b = DynamicBatcher(broken, ThreadPoolExecutor(1), max_batch_size=4, max_wait_s=0,
                       max_queue_images=10)
    b.start()
    results = await asyncio.gather(*(b.submit(np.ones((1, 1))) for _ in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    await b.close()


async def test_closed_batcher_takes_no_new_work() -> None:
    b = make(Recorder())
    b.start()
    await b.close()
    with pytest.raises(BatcherClosed):
        await b.submit(np.ones((1, 1), np.float32))


@pytest.mark.parametrize("workers", [1, 2])
async def test_max_concurrent_batches_calls_run_side_by_side(workers: int) -> None:
    """Two batches that can only finish together (a 2-party barrier) both finish with two
    batch workers; with one, the second batch waits for the first, which times out."""
    barrier = threading.Barrier(2, timeout=1)

    def run(x: np.ndarray) -> Outputs:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return {"y": x * 0}
        return {"y": x * 2}

    b = DynamicBatcher(run, ThreadPoolExecutor(2), max_batch_size=1, max_wait_s=0.0,
                       max_queue_images=10, max_concurrent_batches=workers)
    b.start()
    outs = await asyncio.gather(*(b.submit(np.ones((1, 1), np.float32)) for _ in range(2)))
    assert [float(o["y"][0, 0]) for o in outs] == ([2.0, 2.0] if workers == 2 else [0.0, 0.0])
    await b.close()
