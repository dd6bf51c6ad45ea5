"""The application factory: one Settings, one model repository and its dataplane, the
faces over it.

A request goes through ``RequestContextMiddleware`` (request id, body cap, metrics,
access log), CORS when configured, then ``LeanDispatch``, which answers the hot routes
itself and hands every other request to the FastAPI app.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from cnnlab.captures import CaptureStore
from service import __version__
from service.api import (
    admin,
    demo,
    docs,
    errors,
    feedback,
    filtering,
    health,
    inspect,
    models,
    predict,
    tfserving,
    v2,
)
from service.api.deps import known_query, require_api_key
from service.api.middleware import RequestContextMiddleware
from service.api.routing import LeanDispatch
from service.api.schemas import ERRORS
from service.capture.writer import CaptureWriter
from service.dataplane.memory import BodyMemory
from service.dataplane.plane import DataPlane
from service.grpc import server as grpc
from service.runtime import drain, logs, tracing
from service.runtime.heap import freeze_heap
from service.runtime.metrics import Metrics
from service.runtime.settings import Settings, get_settings
from service.runtime.tuning import tune_process
from service.runtime.workers import pool_dir, pool_metrics_dir
from service.serving.admin_state import StateFile
from service.serving.repository import ModelRepository

log = logging.getLogger(__name__)


# the faces behind the API key; the lean dispatch answers the hot routes of those it lists
FACES = (predict, inspect, tfserving, v2, models, filtering, feedback)
HOT = (predict, inspect, tfserving, v2)


def create_app(settings: Settings | None = None) -> ASGIApp:
    """The service as uvicorn runs it: the per-request plumbing around the lean dispatch
    and the FastAPI app."""
    settings = settings or get_settings()
    if pool_dir(settings):  # one of several workers: nothing set its logging up
        logs.configure(settings.log_level, settings.log_format, with_pid=True)
    tracing.configure()  # when the OTEL_* variables ask for it
    api = create_api(settings)
    return with_plumbing(LeanDispatch(api, (face.router for face in HOT)), api, settings)


def with_plumbing(app: ASGIApp, api: FastAPI, settings: Settings) -> ASGIApp:
    """``app`` (the lean dispatch, or ``api`` itself) with CORS when configured and the
    request context: request id, body caps, metrics, access log."""
    if settings.cors_origins:
        app = CORSMiddleware(app, allow_origins=settings.cors_origins,
                             allow_methods=["GET", "POST", "PUT"], allow_headers=["*"])
    return RequestContextMiddleware(app, metrics=api.state.metrics,
                                    max_body_bytes=settings.max_upload_bytes,
                                    bodies=api.state.bodies,
                                    request_timeout_s=settings.request_timeout_s)


def capture_writer(settings: Settings, metrics: Metrics) -> CaptureWriter | None:
    """The capture store's writer when capture is on (``CNNLAB_CAPTURE_RATE`` > 0)."""
    if settings.capture_rate <= 0:
        return None
    store = CaptureStore(settings.capture_store_url())
    log.info("capturing %.0f%% of upload requests into %s", 100 * settings.capture_rate,
             store.engine.url.render_as_string(hide_password=True))
    max_age = settings.capture_max_days * 86400 if settings.capture_max_days else None
    return CaptureWriter(store, settings.capture_rate, settings.capture_queue_bytes,
                         settings.capture_max_rows, max_age,
                         on_written=metrics.captured.inc, on_dropped=metrics.capture_dropped.inc)


def create_api(settings: Settings) -> FastAPI:
    """The FastAPI application: routes, error handlers, and the repository's lifespan."""
    metrics = Metrics()
    bodies = BodyMemory(settings.max_body_memory_bytes)  # HTTP bodies and gRPC messages

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        device = tune_process(settings)
        freeze_heap()
        repo = ModelRepository(settings, metrics, device, StateFile(settings.admin_state_path()),
                               pool_metrics_dir(settings))
        plane = DataPlane(repo, settings, capture_writer(settings, metrics), bodies)
        app.state.plane = plane
        await repo.start()  # load + warm every model before taking traffic
        # FastAPI builds its routes' request models and the OpenAPI document lazily, on the
        # event loop, at the first request that needs them: build both before traffic
        app.openapi()
        grpc_server = await grpc.start(plane) if settings.grpc_port else None
        if grpc_server is not None:  # drained with HTTP, in the same grace period
            drain.on_shutdown(lambda grace_s: grpc_server.stop(grace=grace_s))
        worker = f" (worker {os.getpid()} of {settings.workers})" if pool_dir(settings) else ""
        log.info("serving %s from %s%s", ", ".join(sorted(repo.models)) or "no models",
                 repo.root, worker)
        try:
            yield
        finally:
            if grpc_server is not None:  # (already stopped when the worker drained)
                await grpc_server.stop(grace=settings.shutdown_grace_s)
            await repo.stop()
            plane.close()

    app = FastAPI(
        title="CNN Lab Server",
        version=__version__,
        description="Predictions, activations, filters and saliency of small image CNNs, "
                    "with TensorFlow-Serving- and KServe-V2-compatible routes.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # service.api.docs serves them from packaged files
        # Prometheus (/metrics) is the telemetry here
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.bodies = bodies
    errors.install(app)

    protected = [Depends(require_api_key), Depends(known_query)]
    app.include_router(health.router)
    app.include_router(demo.router)  # static page; its API calls carry the key
    app.include_router(docs.router)  # Swagger UI and ReDoc, from packaged files
    app.mount("/static/docs", docs.files, name="docs-assets")
    app.mount("/static", demo.files, name="static")
    for face in FACES:
        app.include_router(face.router, dependencies=protected, responses=ERRORS)
    app.include_router(admin.router, dependencies=[Depends(known_query)])
    return app
