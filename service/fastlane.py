"""The fast lane: the hottest routes answered by a pure-ASGI dispatcher.

FastAPI's per-request machinery (route matching through its routers, dependency solving,
query-parameter models, exit stacks, its middleware stack) cost about 1 ms of event-loop
time a request, more than decoding a digit and running the model. The lane sits inside the
request-context middleware (request id, body cap, metrics, access log) and CORS, but outside
FastAPI; for each path it knows it validates the same query model and calls the very same
function as the FastAPI route, with the same API-key check and the same error shape. Every
other request, and every request when ``CNNLAB_FAST_LANE=false``, goes to FastAPI unchanged
(which also documents these routes in OpenAPI).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from service.config import Settings
from service.deps import require_api_key
from service.errors import ApiError, error_response, internal_error, validation_message
from service.middleware import BodyTooLarge
from service.repository import ModelRepository
from service.routes import tfserving
from service.routes.inspect import ACTIVATIONS_PATH, ActivationsParams, activations_response
from service.routes.predict import PREDICT_PATH, PredictParams, classify_uploads

Handler = Callable[[Request, ModelRepository, Settings, str, Any], Awaitable[Response]]


def json_response(body: object, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


async def _predict(request: Request, repo: ModelRepository, settings: Settings, name: str,
                   params: PredictParams) -> Response:
    return json_response(await classify_uploads(request, repo, settings, name, params))


@dataclass(frozen=True)
class Lane:
    path: str                 # the route template, also the metrics label
    params: type[BaseModel]   # the route's query model
    handler: Handler

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + self.path.replace("{name}", "([^/]+)") + "$")

    def query(self, request: Request) -> BaseModel:
        """The validated query parameters (``ApiError`` 422 if invalid)."""
        if not request.scope.get("query_string"):
            return self.no_query  # most requests have none: validated once
        try:
            return self.params.model_validate(dict(request.query_params))
        except ValidationError as exc:
            raise ApiError(422, validation_message(exc.errors(), ("query",))) from None

    @functools.cached_property
    def no_query(self) -> BaseModel:
        return self.params.model_validate({})


LANES = (Lane(PREDICT_PATH, PredictParams, _predict),
         Lane(ACTIVATIONS_PATH, ActivationsParams, activations_response),
         Lane(tfserving.PREDICT_PATH, tfserving.NoQuery, tfserving.predict_response))


class FastLane:
    """Wraps the FastAPI app ``api``; answers POSTs to the lanes' paths itself."""

    def __init__(self, api: FastAPI, lanes: tuple[Lane, ...] = LANES) -> None:
        self.api = api
        self.lanes = [(lane.pattern, lane) for lane in lanes]

    def _match(self, scope: Scope) -> tuple[Lane, str] | None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for pattern, lane in self.lanes:
                if found := pattern.match(scope["path"]):
                    return lane, found[1]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = self._match(scope)
        if matched is None:
            await self.api(scope, receive, send)
            return
        lane, name = matched
        scope["route"] = lane  # read by the metrics middleware: ``.path`` is the template
        request = Request(scope, receive)
        state = self.api.state
        try:
            await require_api_key(request, state.settings)
            response = await lane.handler(request, state.repo, state.settings, name,
                                          lane.query(request))
        except ApiError as exc:
            response = error_response(exc.status_code, exc.message, exc.headers)
        except BodyTooLarge:
            raise  # the request-context middleware answers 413
        except Exception:  # what FastAPI's handler does for its routes
            response = internal_error(scope)
        await response(scope, receive, send)
