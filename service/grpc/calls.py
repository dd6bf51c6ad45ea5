"""What every gRPC method shares: the API key from the call's metadata, and the service's
errors as gRPC status codes."""

from __future__ import annotations

import functools
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from service.errors import ApiError
from service.runtime.settings import Settings
from service.serving.repository import ModelRepository

log = logging.getLogger(__name__)

# the HTTP status of an ApiError -> the gRPC status a client expects for it
STATUS = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
          403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
          413: grpc.StatusCode.RESOURCE_EXHAUSTED, 415: grpc.StatusCode.INVALID_ARGUMENT,
          422: grpc.StatusCode.INVALID_ARGUMENT, 503: grpc.StatusCode.UNAVAILABLE}

S = TypeVar("S", bound="Servicer")
Method = Callable[[S, Any, grpc.aio.ServicerContext], Awaitable[Any]]


class Servicer:
    """What every servicer holds: the worker's repository and settings."""

    def __init__(self, repo: ModelRepository, settings: Settings) -> None:
        self.repo = repo
        self.settings = settings

    def count(self, method: str, code: str, seconds: float) -> None:
        """One call in the request metrics, as HTTP requests are (route = the method)."""
        metrics = self.repo.metrics
        metrics.requests.labels(method, "gRPC", "", "", code).inc()
        metrics.latency.labels(method, "gRPC").observe(seconds)


def check_key(context: grpc.aio.ServicerContext, settings: Settings, *,
              admin: bool = False) -> None:
    """The API key (``x-api-key`` or ``authorization: Bearer``), as over HTTP."""
    if admin and not settings.api_key:
        raise ApiError(403, "repository changes are disabled: set CNNLAB_API_KEY to enable them")
    if not settings.api_key:
        return
    metadata = dict(context.invocation_metadata() or ())
    given = str(metadata.get("x-api-key", ""))
    auth = str(metadata.get("authorization", ""))
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
        raise ApiError(401, "missing or wrong API key (send x-api-key or authorization: "
                            "Bearer metadata)")


def rpc(*, admin: bool = False) -> Callable[[Method[S]], Method[S]]:
    """A servicer method with the API-key check, whose ``ApiError`` becomes the matching
    gRPC status and whose unexpected error becomes INTERNAL (logged)."""

    def wrap(method: Method[S]) -> Method[S]:
        @functools.wraps(method)
        async def call(self: S, request: Any, context: grpc.aio.ServicerContext) -> Any:
            started, code = time.perf_counter(), grpc.StatusCode.OK
            try:
                check_key(context, self.settings, admin=admin)
                return await method(self, request, context)
            except ApiError as exc:
                code = STATUS.get(exc.status_code, grpc.StatusCode.UNKNOWN)
                await context.abort(code, exc.message)
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("gRPC %s failed", method.__name__)
                await context.abort(code, "internal error (see the log)")
            finally:
                self.count(method.__name__, code.name, time.perf_counter() - started)
        return call

    return wrap
