"""Hot routes: declared once for FastAPI, answered without its per-request machinery.

A hot route is an ordinary FastAPI route (served, documented in OpenAPI, with the
router's API-key dependency) whose handler takes ``(request, name, query)`` and returns a
``Response``. Its declaration (``hot_post``) also records it in ``HOT_ROUTES``;
``LeanDispatch`` sits in front of the FastAPI app and answers requests for those routes
itself, from that record: the path pattern (compiled as Starlette compiles the route's),
the query model and the handler, with the same API-key check and error shape. FastAPI's
dependency solving, query-parameter models and middleware stack cost more event-loop time
than decoding a digit and running the model; every other request goes to FastAPI.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Receive, Scope, Send

from service.api.deps import require_api_key, settings_of
from service.api.errors import (
    error_response,
    internal_error,
    service_error_response,
    validation_message,
)
from service.api.middleware import BodyRefused
from service.errors import ServiceError, Unprocessable

Q = TypeVar("Q", bound=BaseModel)
Handler = Callable[[Request, str, Q], Awaitable[Response]]


@dataclass(frozen=True)
class HotRoute(Generic[Q]):
    """What a hot route's declaration gives the lean dispatch."""

    path: str                 # the full template, e.g. /api/models/{name}/predict
    handler: Handler[Q]
    query_model: type[Q]

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        return compile_path(self.path)[0]

    def query(self, scope: Scope, request: Request) -> Q:
        """The validated query parameters (``Unprocessable`` if invalid)."""
        if not scope.get("query_string"):
            return self.no_query  # most requests have none: validated once
        try:
            return self.query_model.model_validate(dict(request.query_params))
        except ValidationError as exc:
            raise Unprocessable(validation_message(exc.errors(), ("query",))) from None

    @functools.cached_property
    def no_query(self) -> Q:
        return self.query_model.model_validate({})


def hot_post(router: APIRouter, path: str, query_model: type[Q],
             **route_options: Any) -> Callable[[Handler[Q]], Handler[Q]]:
    """Declare ``handler`` as the POST route ``path`` (with a ``{name}`` parameter) whose
    query parameters are ``query_model``; ``route_options`` go to FastAPI (responses,
    OpenAPI extras)."""

    def declare(handler: Handler[Q]) -> Handler[Q]:
        async def endpoint(request: Request, name: str, params: Q) -> Response:
            return await handler(request, name, params)

        # the signature FastAPI reads: the query model as query parameters
        endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              annotation=Request),
            inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
            inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              annotation=Annotated[query_model, Query()]),
        ], return_annotation=Response)
        endpoint.__doc__ = handler.__doc__
        router.add_api_route(path, endpoint, methods=["POST"], name=handler.__name__,
                             response_class=Response, **route_options)
        HOT_ROUTES.append(HotRoute(router.prefix + path, handler, query_model))
        return handler

    return declare


HOT_ROUTES: list[HotRoute[Any]] = []  # filled by the declarations


class NoQuery(BaseModel):
    """A hot route without query parameters (any given are ignored, as TF Serving and
    Triton do)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class LeanDispatch:
    """Answers the hot routes (see the module docstring); the rest goes to ``api``, which
    includes the routers that declare them."""

    def __init__(self, api: FastAPI, routes: list[HotRoute[Any]] = HOT_ROUTES) -> None:
        self.api = api
        self.routes = list(routes)

    def _match(self, scope: Scope) -> tuple[HotRoute[Any], str] | None:
        if scope["type"] == "http" and scope["method"] == "POST":  # hot routes are POSTs
            for hot in self.routes:
                if found := hot.pattern.match(scope["path"]):
                    return hot, found["name"]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = self._match(scope)
        if matched is None:
            await self.api(scope, receive, send)
            return
        hot, name = matched
        scope["app"] = self.api      # request.app.state: the repository and settings
        scope["route"] = hot         # the metrics' route label (its ``path``)
        request = Request(scope, receive)
        try:
            await require_api_key(request, settings_of(request))
            response = await hot.handler(request, name, hot.query(scope, request))
        except ServiceError as exc:
            response = service_error_response(exc)
        except BodyRefused as exc:
            response = error_response(exc.status, str(exc), {"Connection": "close"})
        except ClientDisconnect:
            return  # nobody to answer
        except Exception:  # what FastAPI's handler does for its routes
            response = internal_error(scope)
        await response(scope, receive, send)
