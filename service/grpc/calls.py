"""What every gRPC method shares: the API key from the call's metadata, and the service's
errors as gRPC status codes."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from service import errors
from service.dataplane import access
from service.dataplane.plane import DataPlane
from service.runtime import deadline, tracing
from service.runtime.settings import Settings

log = logging.getLogger(__name__)

# each kind of domain error -> the gRPC status a client expects for it (the one place)
STATUS: dict[type[errors.ServiceError], grpc.StatusCode] = {
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Unprocessable: grpc.StatusCode.INVALID_ARGUMENT,
    errors.UnsupportedMedia: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    errors.TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.NotReady: grpc.StatusCode.UNAVAILABLE,
    errors.Overloaded: grpc.StatusCode.UNAVAILABLE,
    errors.MemoryFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.TimedOut: grpc.StatusCode.DEADLINE_EXCEEDED,
}

S = TypeVar("S", bound="Servicer")
Method = Callable[[S, Any, grpc.aio.ServicerContext], Awaitable[Any]]


class Servicer:
    """What every servicer holds: the worker's dataplane."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.settings = plane.settings

    def count(self, method: str, code: str, seconds: float) -> None:
        """One call in the request metrics, as HTTP requests are (route = the method)."""
        metrics = self.plane.repo.metrics
        metrics.requests.labels(method, "gRPC", "", "", code).inc()
        metrics.latency.labels(method, "gRPC").observe(seconds)


PREDICTION_ID = "x-prediction-id"  # trailing metadata: the prediction's own id


def tell_prediction_id(context: grpc.aio.ServicerContext, prediction_id: str) -> None:
    """The prediction's id in the call's trailing metadata (as X-Prediction-ID over HTTP)."""
    context.set_trailing_metadata(((PREDICTION_ID, prediction_id),))


def check_key(context: grpc.aio.ServicerContext, settings: Settings, *,
              admin: bool = False) -> None:
    """The API key from the call's metadata, as over HTTP."""
    def header(name: str) -> str:
        return next((str(v) for k, v in context.invocation_metadata() or () if k == name), "")

    access.check_key(header, settings, admin=admin)


def rpc(*, admin: bool = False) -> Callable[[Method[S]], Method[S]]:
    """A servicer method with the API-key check, whose ``ServiceError`` becomes the matching
    gRPC status and whose unexpected error becomes INTERNAL (logged)."""

    def wrap(method: Method[S]) -> Method[S]:
        @functools.wraps(method)
        async def call(self: S, request: Any, context: grpc.aio.ServicerContext) -> Any:
            started, code = time.perf_counter(), grpc.StatusCode.OK
            timeout = self.settings.request_timeout_s
            client = context.time_remaining()  # the caller's own deadline, when it set one
            size, held = request.ByteSize(), 0  # the message, in the body budget
            try:
                check_key(context, self.settings, admin=admin)
                self.plane.bodies.take(size)
                held = size
                with deadline.started(min(timeout, client) if client else timeout):
                    if tracing.enabled():  # a child of the caller's traceparent metadata
                        carrier = {k: v for k, v in context.invocation_metadata() or ()
                                   if k in ("traceparent", "tracestate")
                                   and isinstance(v, str)}
                        with tracing.server_span(method.__name__, carrier):
                            return await method(self, request, context)
                    return await method(self, request, context)
            except errors.ServiceError as exc:
                code = STATUS[type(exc)]
                await context.abort(code, exc.message)
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("gRPC %s failed", method.__name__)
                await context.abort(code, "internal error (see the log)")
            finally:
                self.plane.bodies.give(held)
                self.count(method.__name__, code.name, time.perf_counter() - started)
        return call

    return wrap
