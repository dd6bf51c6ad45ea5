"""OpenTelemetry tracing of a request's stages, off unless the standard ``OTEL_*``
variables configure it.

On when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``) or an OTLP
endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``..._TRACES_ENDPOINT``), and
``OTEL_SDK_DISABLED`` is not ``true``: an SDK ``TracerProvider`` (resource from
``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES``) exports in batches through the OTLP
exporter over HTTP, which reads its own ``OTEL_EXPORTER_OTLP_*`` settings. W3C
``traceparent`` is taken from HTTP headers and gRPC metadata (the global propagator).

Off, every helper here returns at once: a stage costs one boolean test.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context, propagate, trace

log = logging.getLogger(__name__)

tracer = trace.get_tracer("cnnlab")
_enabled = False


def enabled() -> bool:
    return _enabled


def wanted(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").lower()
    if exporter == "none":
        return False
    return bool(exporter or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(exporter: Any = None) -> bool:
    """Install the SDK's tracer provider when ``OTEL_*`` asks for it (or with ``exporter``,
    a ``SpanExporter``, exported span by span); whether tracing is on."""
    global _enabled, tracer
    if _enabled or (exporter is None and not wanted()):  # (once a process)
        return _enabled
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get(
        "OTEL_SERVICE_NAME", "cnn-lab-server")}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_env_exporter()))
    trace.set_tracer_provider(provider)
    tracer = provider.get_tracer("cnnlab")
    _enabled = True
    log.info("tracing on: spans of every request's stages are exported")
    return True


def _env_exporter() -> Any:
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


@contextlib.contextmanager
def server_span(name: str, carrier: Mapping[str, str]) -> Iterator[trace.Span | None]:
    """The span of one request (a child of the caller's ``traceparent`` in ``carrier``),
    current while the request runs; None when tracing is off."""
    if not _enabled:
        yield None
        return
    parent = propagate.extract(carrier)
    span = tracer.start_span(name, context=parent, kind=trace.SpanKind.SERVER)
    token = context.attach(trace.set_span_in_context(span, parent))
    try:
        yield span
    finally:
        context.detach(token)
        span.end()


def stage(name: str) -> contextlib.AbstractContextManager[Any]:
    """A span for one stage of the current request (decode, preprocess, encode, ...)."""
    if not _enabled:
        return contextlib.nullcontext()
    return tracer.start_as_current_span(name)


def current() -> trace.SpanContext | None:
    """The current request's span context, to link a batch to or parent a span on."""
    if not _enabled:
        return None
    ctx = trace.get_current_span().get_span_context()
    return ctx if ctx.is_valid else None


def trace_id(span: trace.Span | None) -> str | None:
    """The 32-hex trace id of ``span`` (a request id for the logs)."""
    if span is None:
        return None
    return format(span.get_span_context().trace_id, "032x")


def batch_spans(requests: list[tuple[trace.SpanContext | None, int]], started_ns: int,
                ended_ns: int, size: int) -> None:
    """One model call's spans: the batch (a span of its own, linked to the requests in
    it), and under each traced request (its span context, when it was queued) its
    ``queue wait`` and its ``model call``, linked to the batch."""
    traced = [(ctx, queued) for ctx, queued in requests if ctx is not None]
    if not traced:
        return
    batch = tracer.start_span("batch", context=context.Context(), start_time=started_ns,
                              links=[trace.Link(ctx) for ctx, _ in traced],
                              attributes={"cnnlab.batch.images": size,
                                          "cnnlab.batch.requests": len(requests)})
    batch.end(end_time=ended_ns)
    for ctx, queued in traced:
        parent = trace.set_span_in_context(trace.NonRecordingSpan(ctx))
        tracer.start_span("queue wait", context=parent, start_time=queued).end(
            end_time=started_ns)
        tracer.start_span("model call", context=parent, start_time=started_ns,
                          links=[trace.Link(batch.get_span_context())]).end(end_time=ended_ns)
