"""Hot routes: ordinary FastAPI routes, answered without FastAPI's per-request machinery.

A hot route is declared like any route, with FastAPI's own ``add_api_route`` and one more
option, ``route_class_override=HotRoute`` (``hot_post`` below does both). Its handler has
the plain signature ``(request, name, params: Annotated[QueryModel, Query()])``, so FastAPI
serves and documents it as usual. ``LeanDispatch`` sits in front of the FastAPI app: it is
given the routers whose hot routes it answers, and answers a request for one of them
itself — the route's compiled path, query model and handler — with the same API-key check
and error shape. FastAPI's dependency solving, query-parameter models and middleware stack
cost more event-loop time than decoding a digit and running the model; every other
request goes to FastAPI.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from service.api.deps import check_query, model_query_names, require_api_key, settings_of
from service.api.errors import (
    body_refused,
    internal_error,
    service_error_response,
    validation_message,
)
from service.api.middleware import BodyRefused
from service.errors import ServiceError, Unprocessable

Handler = Callable[..., Awaitable[Response]]
H = TypeVar("H", bound=Handler)


class NoQuery(BaseModel):
    """A hot route without query parameters (any given are refused, naming none)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class HotRoute(APIRoute):
    """A POST route the lean dispatch answers; its handler takes ``(request, name,
    params)``, ``params`` being its query model."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        hint = typing.get_type_hints(endpoint, include_extras=True)["params"]
        self.query_model: type[BaseModel] = typing.get_args(hint)[0]
        self.no_query = self.query_model.model_validate({})  # most requests have none
        self.query_names = model_query_names(self.query_model)

    def query(self, scope: Scope, request: Request) -> BaseModel:
        """The validated query parameters (``Unprocessable`` if invalid or unknown)."""
        if not scope.get("query_string"):
            return self.no_query
        check_query(request.query_params.keys(), self.query_names)
        try:
            return self.query_model.model_validate(dict(request.query_params))
        except ValidationError as exc:
            raise Unprocessable(validation_message(exc.errors(), ("query",))) from None


def hot_post(router: APIRouter, path: str, **options: Any) -> Callable[[H], H]:
    """Declare ``handler`` as the hot POST route ``path`` of ``router``; ``options`` go to
    FastAPI (responses, OpenAPI extras)."""

    def declare(handler: H) -> H:
        router.add_api_route(path, handler, methods=["POST"], response_class=Response,
                             route_class_override=HotRoute, **options)
        return handler

    return declare


class LeanDispatch:
    """Answers the hot routes of ``routers`` (see the module docstring); the rest goes to
    ``api``, which includes those routers."""

    def __init__(self, api: FastAPI, routers: Iterable[APIRouter]) -> None:
        self.api = api
        self.routes = [r for router in routers for r in router.routes
                       if isinstance(r, HotRoute)]

    def _match(self, scope: Scope) -> tuple[HotRoute, str] | None:
        if scope["type"] == "http" and scope["method"] == "POST":  # hot routes are POSTs
            for hot in self.routes:
                if found := hot.path_regex.match(scope["path"]):
                    return hot, found["name"]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = self._match(scope)
        if matched is None:
            await self.api(scope, receive, send)
            return
        hot, name = matched
        scope["app"] = self.api      # request.app.state: the dataplane and settings
        scope["route"] = hot         # the metrics' route label (its ``path``)
        request = Request(scope, receive)
        try:
            await require_api_key(request, settings_of(request))
            response = await hot.endpoint(request, name, hot.query(scope, request))
        except ServiceError as exc:
            response = service_error_response(exc)
        except BodyRefused as exc:
            response = body_refused(exc)
        except ClientDisconnect:
            return  # nobody to answer
        except Exception:  # what FastAPI's handler does for its routes
            response = internal_error(scope)
        await response(scope, receive, send)
