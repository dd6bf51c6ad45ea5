"""Connection hygiene for a server exposed directly: uvicorn's HTTP protocol with
deadlines for a request's headers and body, a cap on the headers' size, and a cap on open
connections per worker.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) but waits forever for
the rest of a request that has begun, so a client that sends half a request line, or half
a body, and stops holds a file descriptor and memory for good; and its
``limit_concurrency`` answers a plain-text 503 without ``Retry-After``. This protocol
(given to uvicorn as its ``http`` class) answers 408 and closes a connection whose request
headers do not arrive within ``header_timeout_s`` (counted from its first byte, or from
the connection for one that sends nothing), whose body stalls for ``body_timeout_s``, or
whose body arrives slower than ``min_body_rate_bytes_s`` overall (Apache's
mod_reqtimeout ``MinRate``: the body may take ``body_timeout_s`` plus a second per that
many bytes, so a trickle of a byte every few seconds is cut however it is paced). A
request line and headers over ``max_header_bytes`` are answered 431 (llhttp itself sets no
bound, and httptools keeps a header until it is whole). A connection beyond
``max_connections`` is answered 503 + ``Retry-After``. Every refusal is in the service's
JSON error shape. The deadlines are looked at once per chunk of data received, so a
request that arrives whole costs no timer.
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


class HeadersTooLarge(Exception):
    """Raised in a parser callback to stop parsing a request whose headers are too big."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with request deadlines, a header cap and a connection
    cap."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        settings = get_settings()
        self._header_timeout_s = settings.header_timeout_s
        self._body_timeout_s = settings.body_timeout_s
        self._min_body_rate = settings.min_body_rate_bytes_s
        self._max_header_bytes = settings.max_header_bytes
        self._head_bytes = 0        # of this request's line and headers, as parsed
        self._head_received = 0     # raw bytes received while its headers are incomplete
        self._body_started = 0.0
        self._body_received = 0
        self._refused = False       # answered 431: the parser's own 400 must not follow
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

    # the parser's callbacks say where in a request the connection is, and how big it is
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = "headers"
        self._head_bytes = self._head_received = 0

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._phase = "body"
        self._body_started, self._body_received = self.loop.time(), 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_received += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._phase = "idle"
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._phase == "idle":  # (between requests uvicorn's keep-alive timeout rules)
            self._disarm()
        elif self._phase == "headers":
            # headers still incomplete: the parser holds what came so far
            self._head_received += len(data)
            if self._head_received > self._max_header_bytes:
                self._refuse_headers()
            elif self._deadline_for != "headers":
                self._arm("headers", self._header_timeout_s)  # from the request's first byte
        elif self._phase == "body":
            # from the body's last chunk, and no later than its minimum rate allows
            overall = (self._body_started + self._body_timeout_s
                       + self._body_received / self._min_body_rate)
            self._arm("body", min(self._body_timeout_s, overall - self.loop.time()))

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # (after a 431 the parser's error is ours: already answered)
            super().send_400_response(msg)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._max_header_bytes:
            self._refuse_headers()
            raise HeadersTooLarge  # stops the parser; uvicorn's 400 is skipped above

    def _refuse_headers(self) -> None:
        if not self._refused and not self.transport.is_closing():
            self.transport.write(error_bytes(
                431, "Request Header Fields Too Large", "the request line and headers "
                f"exceed the {self._max_header_bytes}-byte limit"))
            self.transport.close()
        self._refused = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, phase: Phase, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(max(seconds, 0.0), self._too_slow)
        self._deadline_for = phase

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
            self._deadline_for = "idle"

    def _too_slow(self) -> None:
        if self._deadline_for == "headers":
            why = f"the request's headers did not arrive within {self._header_timeout_s:g} s"
        else:
            why = (f"the request's body stalled for {self._body_timeout_s:g} s or arrived "
                   f"slower than {self._min_body_rate} bytes/s")
        self._deadline = None
        if self.transport.is_closing():
            return
        started = self.cycle is not None and self.cycle.response_started
        if not started:
            self.transport.write(error_bytes(408, "Request Timeout", why))
        self.transport.close()
