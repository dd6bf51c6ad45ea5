"""The application factory: one Settings, one repository, the three faces."""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import cv2
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from service import __version__, errors, logs, workers
from service.config import Settings, get_settings
from service.deps import require_api_key
from service.device import configure_devices
from service.fastlane import FastLane
from service.metrics import Metrics, worker_exited
from service.middleware import RequestContextMiddleware
from service.peers import PeerServer
from service.repository import ModelRepository
from service.routes import (
    admin,
    demo,
    filtering,
    health,
    inspect,
    models,
    predict,
    tfserving,
    v2,
)
from service.schemas import ERRORS

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> ASGIApp:
    """The service as uvicorn runs it: the per-request plumbing (request id, body cap,
    metrics, access log; CORS; the fast lane) wrapped around the FastAPI app, outside
    FastAPI's own middleware stack so the hot route pays for none of it."""
    settings = settings or get_settings()
    if workers.pool_dir(settings):  # one of several workers: nothing set its logging up
        logs.configure(settings.log_level, settings.log_format, with_pid=True)
    api = create_api(settings)
    app: ASGIApp = FastLane(api) if settings.fast_lane else api
    if settings.cors_origins:
        app = CORSMiddleware(app, allow_origins=settings.cors_origins,
                             allow_methods=["GET", "POST", "PUT"], allow_headers=["*"])
    return RequestContextMiddleware(app, metrics=api.state.metrics,
                                    max_body_bytes=settings.max_upload_bytes)


def create_api(settings: Settings) -> FastAPI:
    """The FastAPI application: routes, error handlers, and the repository's lifespan."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        device = configure_devices(*settings.tf_threads())
        # OpenCV's pool parallelises even a 28x28 resize, and its idle worker spins on
        # sched_yield: under load it burnt ~25 % of a core here (1 = no pool).
        cv2.setNumThreads(settings.opencv_threads)
        # an inference thread needs the GIL to start a batch and to hand its answer back;
        # while the loop runs Python it gets it only after this interval
        sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
        repo = ModelRepository(settings, metrics, device)
        app.state.repo = repo
        await repo.start()  # load + warm every model before taking traffic
        # TensorFlow leaves ~330,000 long-lived Python objects; without this every full
        # collection walks them all, a pause of tens of ms a few times a second under load.
        # (Cyclic garbage of a start-up version retired later stays frozen: bounded to the
        # start-up set; versions hot-loaded later are not frozen, so nothing accumulates.)
        gc.collect()
        gc.freeze()
        peers = workers.pool_peers_dir(settings)
        peer_server = PeerServer(repo, peers) if peers else None
        if peer_server:  # one of several workers: catch up on earlier admin actions, listen
            await peer_server.start()
        log.info("serving %s from %s%s", ", ".join(sorted(repo.models)) or "no models",
                 repo.root, f" (worker {os.getpid()} of {settings.workers})" if peers else "")
        try:
            yield
        finally:
            if peer_server:
                await peer_server.stop()
            await repo.stop()
            worker_exited(workers.pool_metrics_dir(settings))

    app = FastAPI(
        title="CNN Lab Server",
        version=__version__,
        description="Predictions, activations, filters and saliency of small image CNNs, "
                    "with TensorFlow-Serving- and KServe-V2-compatible routes.",
        lifespan=lifespan,
        # Prometheus (/metrics) is the telemetry here; FastAPI's native OpenTelemetry hook
        # would otherwise probe the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    errors.install(app)

    protected = [Depends(require_api_key)]
    app.include_router(health.router)
    app.include_router(demo.router)  # static page; its API calls carry the key
    app.include_router(v2.router, dependencies=protected, responses=ERRORS)
    app.include_router(predict.router, dependencies=protected, responses=ERRORS)
    app.include_router(models.router, dependencies=protected, responses=ERRORS)
    app.include_router(inspect.router, dependencies=protected, responses=ERRORS)
    app.include_router(filtering.router, dependencies=protected, responses=ERRORS)
    app.include_router(tfserving.router, dependencies=protected, responses=ERRORS)
    app.include_router(admin.router)
    return app
