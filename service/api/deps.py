"""How routes reach the app's state: FastAPI dependencies as ``Annotated`` aliases, and
the plain accessors hot routes (``service.api.routing``) use.

They are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread,
two thread hops per request on the hot path."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.dataplane.access import check_key
from service.dataplane.plane import DataPlane
from service.errors import Unauthenticated
from service.runtime.settings import Settings
from service.serving.repository import ModelRepository


def plane_of(request: Request) -> DataPlane:
    """The app's dataplane (set up by its lifespan)."""
    plane: DataPlane = request.app.state.plane
    return plane


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_plane(request: Request) -> DataPlane:
    return plane_of(request)


async def get_repo(request: Request) -> ModelRepository:
    """The model repository (admin actions, health and listings act on it directly)."""
    return plane_of(request).repo


async def get_app_settings(request: Request) -> Settings:
    return settings_of(request)


Plane = Annotated[DataPlane, Depends(get_plane)]
Repo = Annotated[ModelRepository, Depends(get_repo)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]


async def require_api_key(request: Request, settings: AppSettings) -> None:
    """When an API key is configured, every route but health needs it."""
    check_key(lambda name: request.headers.get(name, ""), settings)


def presents_key(request: Request, settings: Settings) -> bool:
    """Whether the request may see what only key holders see (yes when no key is set)."""
    try:
        check_key(lambda name: request.headers.get(name, ""), settings)
    except Unauthenticated:
        return False
    return True


async def require_admin(request: Request, settings: AppSettings) -> None:
    """Admin routes always need the key; with none configured they are off."""
    check_key(lambda name: request.headers.get(name, ""), settings, admin=True)


def tag_request(request: Request, model: str, version: int | str) -> None:
    """Label this request's metrics and access-log line with the model version."""
    request.state.model = model
    request.state.version = str(version)
