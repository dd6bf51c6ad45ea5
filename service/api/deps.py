"""How routes reach the app's state: FastAPI dependencies as ``Annotated`` aliases, and
the plain accessors hot routes (``service.api.routing``) use.

They are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread,
two thread hops per request on the hot path."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from service.errors import ApiError
from service.runtime.settings import Settings
from service.serving.repository import ModelRepository


def repo_of(request: Request) -> ModelRepository:
    """The app's model repository (set up by its lifespan)."""
    repo: ModelRepository = request.app.state.repo
    return repo


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_repo(request: Request) -> ModelRepository:
    return repo_of(request)


async def get_app_settings(request: Request) -> Settings:
    return settings_of(request)


Repo = Annotated[ModelRepository, Depends(get_repo)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]


def _presented_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key", "")


def _matches(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())  # constant time


async def require_api_key(request: Request, settings: AppSettings) -> None:
    """When an API key is configured, every route but health needs it."""
    if settings.api_key and not _matches(_presented_key(request), settings.api_key):
        raise ApiError(401, "missing or wrong API key (send X-API-Key or "
                            "Authorization: Bearer)", {"WWW-Authenticate": "Bearer"})


async def require_admin(request: Request, settings: AppSettings) -> None:
    """Admin routes always need the key; with none configured they are off."""
    if not settings.api_key:
        raise ApiError(403, "admin routes are disabled: set CNNLAB_API_KEY to enable them")
    await require_api_key(request, settings)


def tag_request(request: Request, model: str, version: int | str) -> None:
    """Label this request's metrics and access-log line with the model version."""
    request.state.model = model
    request.state.version = str(version)
