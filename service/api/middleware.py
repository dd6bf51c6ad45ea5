"""Per-request plumbing as one pure ASGI middleware (cheaper than BaseHTTPMiddleware):
request id, request body cap, security headers, Prometheus metrics and the
access log."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.dataplane.memory import BodyMemory
from service.errors import MemoryFull
from service.runtime import deadline, drain, tracing
from service.runtime.metrics import Metrics

access_log = logging.getLogger("cnnlab.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# control characters (a URL's %0a decodes to a newline) as escapes, so a path cannot
# forge log lines
_LOG_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}

# Security headers on every answer. API answers are data and load nothing; the demo page
# and its files load only this service's files (no inline script: model data cannot become
# code). An answer that sets its own policy keeps it (the API docs, service.api.docs).
_API_CSP = b"default-src 'none'; frame-ancestors 'none'"
_PAGE_CSP = (b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
             b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_CSP = b"content-security-policy"


_GUARDS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
_API_HEADERS = (*_GUARDS, (_CSP, _API_CSP))
_PAGE_HEADERS = (*_GUARDS, (_CSP, _PAGE_CSP))


def security_headers(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every answer to ``path`` carries (built once, not per request)."""
    return _PAGE_HEADERS if path == "/" or path.startswith("/static/") else _API_HEADERS


def loggable(path: str) -> str:
    """``path`` with its control characters escaped, for one log line."""
    return path.translate(_LOG_ESCAPES)


class BodyRefused(Exception):
    """The request body cannot be taken (413: too large)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int,
                 bodies: BodyMemory, request_timeout_s: float) -> None:
        self.app = app
        self.request_timeout_s = request_timeout_s  # each request's one deadline
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.bodies = bodies  # the bytes of bodies (and gRPC messages) the worker holds
        # the labelled series, looked up once: prometheus-client's ``labels()`` checks and
        # converts every value and takes a lock on each call. Bounded as its own are.
        self._series: dict[tuple[str, ...], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not tracing.enabled():
            await self._handle(scope, receive, send, None)
            return
        headers = dict(scope.get("headers") or [])
        carrier = {k.decode("latin-1"): headers[k].decode("latin-1")
                   for k in (b"traceparent", b"tracestate") if k in headers}
        method = scope.get("method", "")
        with tracing.server_span(method, carrier) as span:
            status = await self._handle(scope, receive, send, tracing.trace_id(span))
            if span is not None:  # named by its route once routing has found it
                route = getattr(scope.get("route"), "path", None)
                span.update_name(f"{method} {route}" if route else method)
                span.set_attributes({"http.request.method": method,
                                     "url.path": scope.get("path", ""),
                                     "http.response.status_code": status})

    async def _handle(self, scope: Scope, receive: Receive, send: Send,
                      trace_id: str | None) -> int:
        """Serve one HTTP request; its status. ``trace_id``: the request id when tracing
        is on (so the logs name the trace)."""
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = trace_id or (given if _REQUEST_ID_RE.match(given)
                           else os.urandom(16).hex())  # uuid4's bits
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500
        limit = self.max_body_bytes
        guards = security_headers(scope.get("path", ""))

        declared = headers.get(b"content-length")
        size = int(declared) if declared is not None and declared.isdigit() else 0
        if size > limit:
            await self._reject(send, rid, 413, f"request body of {size} bytes "
                                               f"exceeds the {limit}-byte limit", guards)
            self._record(scope, 413, started, rid)
            return 413
        held = 0  # this request's bytes in the body budget: those received so far

        async def capped_receive() -> Message:
            nonlocal held
            message = await receive()
            if message["type"] == "http.request":
                chunk = len(message.get("body", b""))
                if held + chunk > limit:
                    raise BodyRefused(413, f"request body exceeds the {limit}-byte limit")
                try:
                    self.bodies.take(chunk)
                except MemoryFull as exc:
                    raise BodyRefused(503, exc.message) from None
                held += chunk
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                raw = list(message.get("headers", []))
                raw.append((b"x-request-id", rid.encode()))
                own_policy = any(name.lower() == _CSP for name, _ in raw)
                raw.extend(g for g in guards if not (own_policy and g[0] == _CSP))
                if drain.active():  # the proxy's next request opens a connection elsewhere
                    raw.append((b"connection", b"close"))
                message["headers"] = raw
            await send(message)

        try:
            # (a body over the cap raises BodyRefused inside the app; the lean dispatch and
            # FastAPI's handler answer it, as they answer every error, in the JSON shape)
            with deadline.started(self.request_timeout_s):
                await self.app(scope, capped_receive, send_wrapper)
        finally:
            self.bodies.give(held)
            self._record(scope, status, started, rid)
        return status

    @staticmethod
    async def _reject(send: Send, rid: str, status: int, message: str,
                      guards: tuple[tuple[bytes, bytes], ...], retry: bool = False) -> None:
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid.encode()),
            *guards,
            (b"connection", b"close"),
            *([(b"retry-after", b"1")] if retry else []),
        ]})
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: Scope, status: int, started: float, rid: str) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        state = scope.get("state", {})
        model, version = str(state.get("model", "")), str(state.get("version", ""))
        method = scope.get("method", "")
        key = (template, method, model, version, str(status))
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (self.metrics.requests.labels(*key),
                                          self.metrics.latency.labels(template, method))
        series[0].inc()
        series[1].observe(elapsed)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "%s %s %s", method, loggable(scope.get("path", "")), status,
                extra={"request_id": rid, "route": template, "model": loggable(model),
                       "version": loggable(version), "status": status,
                       "ms": round(elapsed * 1000, 2)})
