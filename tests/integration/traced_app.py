"""The service with tracing on and the SDK's in-memory exporter, for the tracing test
(``uvicorn --factory tests.integration.traced_app:create``): ``GET /test/spans`` answers
the finished spans as JSON. Only tests load this module."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.types import ASGIApp, Receive, Scope, Send

from service.app import create_app
from service.runtime import tracing

EXPORTER = InMemorySpanExporter()


def _span(s: Any) -> dict[str, Any]:
    return {"name": s.name, "trace_id": format(s.context.trace_id, "032x"),
            "span_id": format(s.context.span_id, "016x"),
            "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
            "links": [format(link.context.span_id, "016x") for link in s.links],
            "start": s.start_time, "end": s.end_time, "attributes": dict(s.attributes or {})}


def create() -> ASGIApp:
    tracing.configure(EXPORTER)
    app = create_app()

    async def with_spans(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/test/spans":
            body = json.dumps([_span(s) for s in EXPORTER.get_finished_spans()]).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return with_spans
