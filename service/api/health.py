"""Liveness, readiness and Prometheus metrics (never behind the API key)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from service.api.deps import AppSettings, Repo, presents_key
from service.api.schemas import HealthBody, VersionInfo
from service.runtime import drain
from service.runtime.metrics import exposition
from service.runtime.workers import pool_metrics_dir

router = APIRouter(tags=["health"])


@router.get("/health/live", response_model=HealthBody)
async def live() -> HealthBody:
    """The process is up and answering."""
    return HealthBody(status="live")


@router.get("/health/ready", response_model=HealthBody,
            responses={503: {"model": HealthBody}})
async def ready(request: Request, repo: Repo, settings: AppSettings) -> JSONResponse:
    """200 once every model in the repository has a version taking traffic, else 503.
    Load errors (which name files) are shown only to a caller with the API key, when
    one is configured; anyone sees the states."""
    if drain.active():
        body = HealthBody(status="draining", models={}, detail="shutting down")
        return JSONResponse(body.model_dump(), status_code=503)
    trusted = presents_key(request, settings)
    models = {name: [VersionInfo(**vars(s)) if trusted else
                     VersionInfo(version=s.version, state=s.state) for s in repo.status(name)]
              for name in sorted(repo.models)}
    if repo.ready:
        body = HealthBody(status="ready", models=models)
    else:
        detail = ("no models in the repository" if not models else
                  "some models have no version ready")
        body = HealthBody(status="not ready", models=models,
                          detail=(repo.last_scan_error or detail) if trusted else detail)
    return JSONResponse(body.model_dump(), status_code=200 if repo.ready else 503)


@router.get("/v2/health/live", tags=["Open Inference Protocol (KServe V2)"])
async def v2_live() -> dict[str, bool]:
    return {"live": True}


@router.get("/v2/health/ready", tags=["Open Inference Protocol (KServe V2)"],
            responses={503: {"description": "not ready (same body)"}})
async def v2_ready(repo: Repo) -> JSONResponse:
    ready = repo.ready and not drain.active()
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, settings: AppSettings) -> Response:
    """Prometheus text; with several workers, all of theirs added up."""
    return Response(exposition(request.app.state.metrics, pool_metrics_dir(settings)),
                    media_type=CONTENT_TYPE_LATEST)
