"""Connection hygiene for a server exposed directly: uvicorn's HTTP protocol with
deadlines for a request's headers and body, and a cap on open connections per worker.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) but waits forever for
the rest of a request that has begun, so a client that sends half a request line, or half
a body, and stops holds a file descriptor and memory for good; and its
``limit_concurrency`` answers a plain-text 503 without ``Retry-After``. This protocol
(given to uvicorn as its ``http`` class) answers 408 and closes a connection whose request
headers do not arrive within ``header_timeout_s`` (counted from its first byte, or from
the connection for one that sends nothing) or whose body stalls for ``body_timeout_s``,
and answers a connection beyond ``max_connections`` with 503 + ``Retry-After``, in the
service's JSON error shape. The deadlines are looked at once per chunk of data received,
so a request that arrives whole costs no timer.
"""

from __future__ import annotations

import asyncio
import json
from typing import Literal

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.runtime.settings import get_settings

Phase = Literal["idle", "headers", "body"]


def error_bytes(status: int, reason: str, message: str, headers: str = "") -> bytes:
    """A whole HTTP/1.1 error response that closes the connection."""
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n{headers}\r\n"
            ).encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with request deadlines and a connection cap."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        settings = get_settings()
        self._header_timeout_s = settings.header_timeout_s
        self._body_timeout_s = settings.body_timeout_s
        self._phase: Phase = "idle"
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_for: Phase = "idle"
        if len(self.connections) > settings.max_connections:
            transport.write(error_bytes(
                503, "Service Unavailable", f"this worker holds its limit of "
                f"{settings.max_connections} connections; retry", "retry-after: 1\r\n"))
            transport.close()
            return
        self._arm("headers", self._header_timeout_s)  # a connection that sends nothing

    # the parser's callbacks say where in a request the connection is
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = "headers"

    def on_headers_complete(self) -> None:
        self._phase = "body"
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = "idle"
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._phase == "idle":  # (between requests uvicorn's keep-alive timeout rules)
            self._disarm()
        elif self._phase == "headers" and self._deadline_for != "headers":
            self._arm("headers", self._header_timeout_s)  # from the request's first byte
        elif self._phase == "body":
            self._arm("body", self._body_timeout_s)       # from the body's last chunk

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, phase: Phase, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)
        self._deadline_for = phase

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
            self._deadline_for = "idle"

    def _too_slow(self) -> None:
        what, seconds = (("headers", self._header_timeout_s) if self._deadline_for == "headers"
                         else ("body", self._body_timeout_s))
        self._deadline = None
        if self.transport.is_closing():
            return
        started = self.cycle is not None and self.cycle.response_started
        if not started:
            self.transport.write(error_bytes(
                408, "Request Timeout", f"the request's {what} did not arrive within "
                f"{seconds:g} s"))
        self.transport.close()
