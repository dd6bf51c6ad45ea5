"""The compute pools: bounded, off the event loop, refusing beyond their queue."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from service.dataplane.work import WorkPool
from service.errors import Overloaded, TimedOut
from service.runtime.tuning import BACKGROUND_NICE

pytestmark = pytest.mark.anyio


async def test_work_runs_off_the_event_loop() -> None:
    pool = WorkPool("test", threads=1, queue=0, timeout_s=5)
    loop_thread = threading.get_ident()
    assert await pool.run(threading.get_ident) != loop_thread


async def test_one_task_more_than_threads_and_queue_is_refused() -> None:
    pool = WorkPool("test", threads=1, queue=1, timeout_s=5)
    release = threading.Event()
    running = [asyncio.ensure_future(pool.run(release.wait)) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(Overloaded, match="2 tasks"):
        await pool.run(release.wait)
    release.set()
    assert await asyncio.gather(*running) == [True, True]
    assert pool.admitted == 0


async def test_a_task_over_the_timeout_times_out_and_keeps_its_slot_until_it_ends() -> None:
    pool = WorkPool("test", threads=1, queue=0, timeout_s=0.1)
    release = threading.Event()
    with pytest.raises(TimedOut):
        await pool.run(release.wait)
    with pytest.raises(Overloaded):  # the thread still runs the first task
        await pool.run(release.wait)
    release.set()
    await asyncio.sleep(0.05)
    assert pool.admitted == 0
    assert await pool.run(lambda: 42) == 42


async def test_pool_threads_run_at_a_lower_priority_than_the_event_loop() -> None:
    pool = WorkPool("test", threads=1, queue=0, timeout_s=5)

    def own_nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert await pool.run(own_nice) == min(19, loop_nice + BACKGROUND_NICE)
