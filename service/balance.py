"""Even connection counts among worker processes (``CNNLAB_WORKERS`` > 1).

uvicorn's workers share one listening socket, and each worker's event loop accepts every
connection that is queued when it wakes. A burst of new keep-alive connections (a load
balancer's pool, a benchmark client) therefore lands in whichever worker's loop runs first:
8 connections from ``wrk -c8`` were measured all in one of two workers, the other idle, and
a 64-image request stream ran at 56 instead of 82 requests/s. Node's cluster module
documents the same skew of a shared socket. Keep-alive connections stay where they land, so
the skew lasts.

Here each worker accepts through its own loop (``BalancedLoop.create_server``) and takes a
pending connection only when it holds no more open connections than any live peer; else
it leaves the connection to the peer for a moment, and takes it anyway after
``MAX_DEFER_S`` (a peer busy or stuck must not delay a client for long). Each worker
publishes its count in a small file of the run directory, ``<dir>/<pid>``; a dead
worker's file is removed by the first reader that notices.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import select
import socket
import ssl as _ssl
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

from service.config import get_settings
from service.workers import pid_alive, pool_connections_dir

log = logging.getLogger("cnnlab.balance")

DEFER_S = 0.002      # a worker over its share looks again after this long
MAX_DEFER_S = 0.05   # ... and takes a connection that waited this long anyway
REFRESH_S = 0.5      # an idle worker republishes its count (connections close)


class Counts:
    """Open-connection counts of the workers, one small file each in ``directory``."""

    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self.directory = directory
        self.pid = pid if pid is not None else os.getpid()
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / str(self.pid)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self.publish(0)

    def publish(self, n: int) -> None:
        os.pwrite(self._fd, n.to_bytes(8, "little"), 0)

    def peers(self) -> dict[int, int]:
        """The live peers' published counts (files of dead workers are removed)."""
        return read_counts(self.directory, skip=self.pid)

    def my_turn(self, mine: int) -> bool:
        """True when no live peer holds fewer open connections than ``mine``."""
        return mine <= min(self.peers().values(), default=mine)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self.path.unlink(missing_ok=True)


def read_counts(directory: Path, skip: int | None = None) -> dict[int, int]:
    """The published open-connection count of every live worker (but ``skip``); the file
    of a dead worker is removed."""
    found: dict[int, int] = {}
    for entry in os.scandir(directory):
        if not entry.name.isdigit() or int(entry.name) == skip:
            continue
        pid = int(entry.name)
        if not pid_alive(pid):
            Path(entry.path).unlink(missing_ok=True)
            continue
        try:
            data = Path(entry.path).read_bytes()
        except FileNotFoundError:
            continue
        if len(data) == 8:
            found[pid] = int.from_bytes(data, "little")
    return found


class AcceptLoop:
    """Accepts on a listening socket in turn with the peers; uvicorn sees it as its
    ``asyncio.Server`` (it only calls ``close``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, factory: Callable[[], Any],
                 sock: socket.socket, counts: Counts) -> None:
        self._loop = loop
        self._factory = factory
        self._sock = sock
        self._counts = counts
        self._transports: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()
        self._closed = False
        self._queue = select.poll()  # (poll, not select: any fd number)
        self._queue.register(sock.fileno(), select.POLLIN)
        self._task = loop.create_task(self._serve())
        self.sockets = [sock]

    def _pending(self) -> bool:
        """A connection waits in the accept queue (looked at, not taken)."""
        return bool(self._queue.poll(0))

    def open_connections(self) -> int:
        return sum(1 for t in list(self._transports) if not t.is_closing())

    async def _readable(self, timeout: float) -> None:
        ready = self._loop.create_future()
        fd = self._sock.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        self._loop.add_reader(fd, wake)
        try:
            await asyncio.wait_for(ready, timeout)
        except TimeoutError:
            pass
        finally:
            if not self._closed:  # (close() has removed it: the socket may be gone)
                self._loop.remove_reader(fd)

    async def _serve(self) -> None:
        while True:
            try:
                await self._accept_in_turn()
            except asyncio.CancelledError:
                raise
            except Exception:  # never stop accepting: this worker would serve no one new
                log.exception("accepting a connection failed; going on in 0.1 s")
                await asyncio.sleep(0.1)

    async def _accept_in_turn(self) -> None:
        waited_since: float | None = None  # a connection we left to a peer, since when
        while True:
            if not self._pending():
                waited_since = None
                self._counts.publish(self.open_connections())
                await self._readable(REFRESH_S)
                continue
            mine = self.open_connections()
            self._counts.publish(mine)
            if not self._counts.my_turn(mine):
                now = self._loop.time()
                waited_since = waited_since if waited_since is not None else now
                if now - waited_since < MAX_DEFER_S:
                    await asyncio.sleep(DEFER_S)
                    continue
            waited_since = None
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue  # a peer took it, or the client gave up
            except OSError as exc:  # out of file descriptors, ...: back off, go on
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                log.error("accept failed: %s; retrying in 0.1 s", exc)
                await asyncio.sleep(0.1)
                continue
            conn.setblocking(False)
            try:
                transport, _ = await self._loop.connect_accepted_socket(self._factory, conn)
            except OSError as exc:
                log.info("connection dropped before it started: %s", exc)
                conn.close()
                continue
            self._transports.add(transport)
            self._counts.publish(mine + 1)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._sock.fileno())
            self._task.cancel()
            self._counts.close()

    def is_serving(self) -> bool:
        return not self._task.done()

    async def wait_closed(self) -> None:
        await asyncio.gather(self._task, return_exceptions=True)


class BalancedLoop(uvloop.Loop):  # type: ignore[misc]
    """uvloop whose servers on a shared socket accept in turn with the other workers."""

    counts_dir: Path | None = None

    async def create_server(  # type: ignore[override]  # (the same call, fewer overloads)
            self, protocol_factory: Callable[[], Any], host: Any = None,
            port: Any = None, *, sock: socket.socket | None = None, backlog: int = 100,
            ssl: _ssl.SSLContext | None = None, **kwargs: Any) -> Any:
        # TLS stays with uvloop's own server: a handshake must not hold up the accept loop
        if sock is None or self.counts_dir is None or ssl is not None:
            return await super().create_server(protocol_factory, host, port, sock=sock,
                                               backlog=backlog, ssl=ssl, **kwargs)
        sock.setblocking(False)
        sock.listen(backlog)
        return AcceptLoop(self, protocol_factory, sock, Counts(self.counts_dir))


def new_loop() -> asyncio.AbstractEventLoop:
    """uvicorn's ``loop`` hook (``loop="service.balance:new_loop"``): a worker's event
    loop, balancing through the run directory named in the environment."""
    loop = BalancedLoop()
    loop.counts_dir = pool_connections_dir(get_settings())
    return loop
