"""One error shape for every face: ``{"error": "<what is wrong, naming the bad value>"}``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Scope

from service import errors as domain
from service.api.middleware import BodyRefused

log = logging.getLogger(__name__)

# each kind of domain error -> its HTTP status (the one place they are mapped)
HTTP_STATUS: dict[type[domain.ServiceError], int] = {
    domain.InvalidInput: 400,
    domain.Unauthenticated: 401,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.TooLarge: 413,
    domain.UnsupportedMedia: 415,
    domain.Unprocessable: 422,
    domain.NotReady: 503,
    domain.Overloaded: 503,
    domain.MemoryFull: 503,
    domain.TimedOut: 503,
}


def service_error_response(exc: domain.ServiceError) -> JSONResponse:
    """A domain error as its HTTP answer, with ``Retry-After`` when a retry may succeed."""
    headers = {}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, domain.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return error_response(HTTP_STATUS[type(exc)], exc.message, headers)


def error_response(status: int, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def validation_message(errors: Sequence[Any], prefix: tuple[str, ...] = ()) -> str:
    """Pydantic errors as one line: ``query.top_k: Input should be ...; ...``."""
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in (*prefix, *err.get("loc", ())) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def body_refused(exc: BodyRefused) -> JSONResponse:
    """A body the worker would not take: too large (413), or no room for it now (503,
    retry in a moment); the connection is closed, since the rest of the body is unread."""
    retry = {"Retry-After": "1"} if exc.status == 503 else {}
    return error_response(exc.status, str(exc), {"Connection": "close", **retry})


def install(app: FastAPI) -> None:
    """Register handlers so no route ever answers with another error shape or a traceback."""

    @app.exception_handler(domain.ServiceError)
    async def _service_error(_: Request, exc: domain.ServiceError) -> JSONResponse:
        return service_error_response(exc)

    @app.exception_handler(BodyRefused)
    async def _body_refused(_: Request, exc: BodyRefused) -> JSONResponse:
        return body_refused(exc)

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, exc: ClientDisconnect) -> JSONResponse:
        return error_response(400, "the client disconnected")  # (nobody reads it)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, validation_message(exc.errors()))

    @app.exception_handler(ValidationError)
    async def _model_validation(_: Request, exc: ValidationError) -> JSONResponse:
        errs = exc.errors()
        where = ".".join(str(p) for p in errs[0]["loc"]) if errs else ""
        return error_response(422, f"{where}: {errs[0]['msg'] if errs else 'invalid value'}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such route (the routes: /docs)"
        elif exc.status_code == 405 and detail == "Method Not Allowed":
            allowed = (exc.headers or {}).get("Allow", "")
            detail = (f"{request.method} is not allowed on {request.url.path}; it takes "
                      f"{allowed or 'another method'}")
        return error_response(exc.status_code, detail, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return internal_error(request.scope)


def internal_error(scope: Scope) -> JSONResponse:
    """Log the exception being handled; tell the client only its request id (500)."""
    rid = scope.get("state", {}).get("request_id", "-")
    log.exception("unhandled error (request id %s)", rid)
    return error_response(500, f"internal error (request id {rid})")
