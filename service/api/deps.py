"""How routes reach the app's state: FastAPI dependencies as ``Annotated`` aliases, and
the plain accessors hot routes (``service.api.routing``) use.

They are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread,
two thread hops per request on the hot path."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel

from service.dataplane.access import check_key, holds_key
from service.dataplane.plane import DataPlane
from service.errors import Unprocessable
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


def _header(request: Request) -> Callable[[str], str]:
    """How ``service.dataplane.access`` reads one header of ``request``."""
    return lambda name: request.headers.get(name, "")


async def require_api_key(request: Request, settings: AppSettings) -> None:
    """When an API key is configured, every route but health needs it."""
    check_key(_header(request), settings)


def presents_key(request: Request, settings: Settings) -> bool:
    """Whether the request may see what only key holders see (``access.holds_key``)."""
    return holds_key(_header(request), settings)


async def require_admin(request: Request, settings: AppSettings) -> None:
    """Admin routes always need the key; with none configured they are off."""
    check_key(_header(request), settings, admin=True)


def check_query(given: Iterable[str], accepted: frozenset[str]) -> None:
    """A query parameter a route does not take is refused (``Unprocessable`` naming those it
    takes), so a misspelt option (``topk=3``, ``versoin=2``) is never silently ignored."""
    unknown = sorted(set(given) - accepted)
    if unknown:
        takes = ", ".join(sorted(accepted)) if accepted else "no query parameters"
        raise Unprocessable(f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(map(repr, unknown))}; this route takes: {takes}")


def query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters ``route`` takes: its own, its dependencies', and the fields of
    a query model (found once, kept on the route)."""
    known: frozenset[str] | None = getattr(route, "cnnlab_query_names", None)
    if known is None:
        known = _collect_query_names(route)
        route.cnnlab_query_names = known  # type: ignore[attr-defined]
    return known


def model_query_names(model: type[BaseModel]) -> frozenset[str]:
    """The query parameters a query model takes (its fields, by alias)."""
    return frozenset(f.alias or n for n, f in model.model_fields.items())


def _collect_query_names(route: APIRoute) -> frozenset[str]:
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        pending.extend(dependant.dependencies)
        for param in dependant.query_params:
            kind = param.field_info.annotation
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                names |= model_query_names(kind)
            else:
                names.add(param.alias)
    return frozenset(names)


async def known_query(request: Request) -> None:
    """The FastAPI routes' check of ``check_query`` (hot routes make it themselves)."""
    route = request.scope.get("route")
    if request.scope.get("query_string") and isinstance(route, APIRoute):
        check_query(request.query_params.keys(), query_names(route))


# the header that carries a prediction's id (``DataPlane``'s, for feedback and logs)
PREDICTION_ID = "X-Prediction-ID"


def tag_request(request: Request, model: str, version: int | str) -> None:
    """Label this request's metrics and access-log line with the model version."""
    request.state.model = model
    request.state.version = str(version)
