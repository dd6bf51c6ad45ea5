"""Workers take new connections in turn (service.balance), here with two accept loops of
one process standing in for two workers on one listening socket."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from service import balance
from service.balance import AcceptLoop, Counts


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_counts_are_shared_and_dead_workers_forgotten(tmp_path: Path) -> None:
    me, peer = Counts(tmp_path, os.getpid()), Counts(tmp_path, os.getppid())
    gone = dead_pid()
    (tmp_path / str(gone)).write_bytes((0).to_bytes(8, "little"))
    peer.publish(3)
    assert me.peers() == {os.getppid(): 3}
    assert not (tmp_path / str(gone)).exists()  # a dead worker's count is removed
    assert me.my_turn(3) and me.my_turn(0) and not me.my_turn(4)
    me.close()
    assert peer.peers() == {} and peer.my_turn(10)  # alone, always its turn


class Hold(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


async def connect_many(port: int, n: int) -> list[tuple[asyncio.StreamReader,
                                                       asyncio.StreamWriter]]:
    return await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port)
                                  for _ in range(n)))


async def settle(*loops: AcceptLoop, total: int) -> None:
    for _ in range(200):
        if sum(a.open_connections() for a in loops) == total:
            return
        await asyncio.sleep(0.01)


def listening() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    sock.listen(64)
    return sock, sock.getsockname()[1]


def published(directory: Path, pid: int) -> int:
    data = (directory / str(pid)).read_bytes()
    return int.from_bytes(data, "little") if len(data) == 8 else 0


def test_a_burst_of_connections_is_split_evenly(tmp_path: Path) -> None:
    """Two "workers" (threads, each with its own event loop, published under two live
    pids) accept on one socket; 16 connections arrive at once."""
    sock, port = listening()
    stop = threading.Event()
    pids = (os.getpid(), os.getppid())

    def worker(pid: int) -> None:
        async def run() -> None:
            accept = AcceptLoop(asyncio.get_running_loop(), Hold, sock, Counts(tmp_path, pid))
            while not stop.is_set():
                await asyncio.sleep(0.01)
            accept.close()
            await accept.wait_closed()

        asyncio.run(run())

    threads = [threading.Thread(target=worker, args=(pid,)) for pid in pids]
    for t in threads:
        t.start()
    while len(list(tmp_path.iterdir())) < 2:
        time.sleep(0.01)
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
    deadline = time.monotonic() + 5
    while sum(published(tmp_path, pid) for pid in pids) < 16 and time.monotonic() < deadline:
        time.sleep(0.01)
    split = [published(tmp_path, pid) for pid in pids]
    stop.set()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    sock.close()
    assert sum(split) == 16
    assert abs(split[0] - split[1]) <= 2, split


def test_a_peer_that_does_not_accept_delays_no_client_for_long(tmp_path: Path) -> None:
    async def main() -> int:
        sock, port = listening()
        loop = asyncio.get_running_loop()
        Counts(tmp_path, os.getppid())  # a live peer that holds 0 connections, never accepts
        a = AcceptLoop(loop, Hold, sock, Counts(tmp_path, os.getpid()))
        clients = await connect_many(port, 4)
        await settle(a, total=4)
        held = a.open_connections()
        for _, writer in clients:
            writer.close()
        a.close()
        sock.close()
        return held

    assert asyncio.run(main()) == 4  # each waited MAX_DEFER_S at most, then was taken
    assert balance.MAX_DEFER_S * 4 < 2  # (settle's patience)
