"""One write per response (service.protocol.CoalescingTransport)."""

from __future__ import annotations

import asyncio

import pytest

from service.protocol import FLUSH_AT_BYTES, CoalescingTransport

pytestmark = pytest.mark.anyio


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 8000) if name == "sockname" else default


async def test_writes_in_one_loop_step_leave_as_one() -> None:
    real = FakeTransport()
    t = CoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    t.write(memoryview(b"{}"))
    assert real.writes == []  # held until the loop step ends
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    t.write(b"next")  # a later response is written on its own
    await asyncio.sleep(0)
    assert real.writes[1:] == [b"next"]


async def test_close_and_large_writes_flush_at_once_and_abort_drops() -> None:
    real = FakeTransport()
    t = CoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"a")
    t.write(b"b" * FLUSH_AT_BYTES)
    assert real.writes == [b"a" + b"b" * FLUSH_AT_BYTES]
    t.write(b"bye")
    t.close()
    assert real.writes[-1] == b"bye" and real.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert len(real.writes) == 2

    real = FakeTransport()
    t = CoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"lost")
    t.abort()
    await asyncio.sleep(0)
    assert real.writes == [] and real.aborted


async def test_everything_else_is_the_real_transports() -> None:
    real = FakeTransport()
    t = CoalescingTransport(real, asyncio.get_running_loop())
    assert t.get_extra_info("sockname") == ("127.0.0.1", 8000)
    assert t.is_closing() is False
