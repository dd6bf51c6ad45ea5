"""The fast lane: ``POST /api/models/{name}/predict`` answered by a pure-ASGI handler.

FastAPI's per-request machinery (route matching over every route, dependency solving,
query-parameter models, exit stacks) cost about 1 ms of event-loop time on this route, more
than decoding the image and running the model. The lane sits inside the request-context
middleware (request id, body cap, metrics, access log) and CORS, but outside FastAPI and
its middleware stack; it recognises this one path and calls the very same
``classify_uploads`` as the FastAPI route, with the same API-key check, the same query
model and the same error shape. Every other request, and every
request when ``CNNLAB_FAST_LANE=false``, goes to FastAPI unchanged.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import orjson
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from service.deps import require_api_key
from service.errors import ApiError, validation_message
from service.middleware import BodyTooLarge
from service.routes.predict import PREDICT_PATH, PredictParams, classify_uploads

log = logging.getLogger(__name__)
_PATH = re.compile(r"^/api/models/([^/]+)/predict$")


@dataclass(frozen=True)
class _RouteLabel:
    path: str  # what the metrics middleware reads off ``scope["route"]``


_ROUTE = _RouteLabel(PREDICT_PATH)


def json_response(body: object, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


class FastLane:
    """Wraps the FastAPI app ``api``; answers the predict route itself, passes the rest."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _PATH.match(scope["path"]) if scope["type"] == "http" and \
            scope["method"] == "POST" else None
        if match is None:
            await self.api(scope, receive, send)
            return
        scope["route"] = _ROUTE
        request = Request(scope, receive)
        state = self.api.state
        try:
            await require_api_key(request, state.settings)
            try:
                params = PredictParams.model_validate(dict(request.query_params))
            except ValidationError as exc:
                raise ApiError(422, validation_message(exc.errors(), ("query",))) from None
            body = await classify_uploads(request, state.repo, state.settings, match[1],
                                          params)
            response = json_response(body)
        except ApiError as exc:
            response = json_response({"error": exc.message}, exc.status_code, exc.headers)
        except BodyTooLarge:
            raise  # the request-context middleware answers 413
        except Exception:  # what FastAPI's ServerErrorMiddleware does for its routes
            rid = scope.get("state", {}).get("request_id", "-")
            log.exception("unhandled error (request id %s)", rid)
            response = json_response({"error": f"internal error (request id {rid})"}, 500)
        await response(scope, receive, send)
