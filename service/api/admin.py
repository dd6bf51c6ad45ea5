"""Admin: reload, load, unload models and move version labels (API key always needed).

An action is applied by the worker that takes the request, written to the admin state
file, and answered once every live worker has applied it (``service.serving.admin_state``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fastapi import APIRouter, Depends

from service.api.deps import AppSettings, Repo, require_admin
from service.api.schemas import ERRORS, LabelBody, ModelList, ModelSummary
from service.errors import ApiError
from service.runtime.metrics import applied_generation
from service.runtime.settings import Settings
from service.runtime.workers import pool_metrics_dir
from service.serving.admin_state import WATCH_INTERVAL_S, AdminState
from service.serving.repository import ModelRepository

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses=ERRORS)

# how long an action waits for the other workers (one may be loading a model)
CONFIRM_TIMEOUT_S = 120.0


async def _act(repo: ModelRepository, settings: Settings,
               change: Callable[[AdminState], None]) -> None:
    """Change the admin state, apply it here, publish it, and wait until every worker has
    applied it (503 if some did not in time: they still will)."""
    async with repo.state_file.update() as state:
        change(state)
        await repo.apply_admin(state, strict=True)
    metrics_dir = pool_metrics_dir(settings)
    if metrics_dir is None:
        return
    deadline = time.monotonic() + CONFIRM_TIMEOUT_S
    while applied_generation(metrics_dir) < state.generation:
        if time.monotonic() > deadline:
            raise ApiError(503, "applied on this worker, but not yet on every worker; they "
                                "apply it when they next read the admin state",
                           {"Retry-After": "1"})
        await asyncio.sleep(WATCH_INTERVAL_S / 2)


def _set_enabled(name: str, enabled: bool) -> Callable[[AdminState], None]:
    def change(state: AdminState) -> None:
        state.model(name).enabled = enabled
    return change


def _rescan(_: AdminState) -> None:
    """No change but a new generation: every worker rescans the repository."""


@router.post("/reload", response_model=ModelList)
async def reload_all(repo: Repo, settings: AppSettings) -> ModelList:
    """Rescan the whole repository now (as the poller would), in every worker."""
    await _act(repo, settings, _rescan)
    return ModelList(models=[ModelSummary.of(repo, n) for n in sorted(repo.models)])


@router.post("/models/{name}/reload", response_model=ModelSummary)
async def reload_model(repo: Repo, settings: AppSettings, name: str) -> ModelSummary:
    repo.entry(name)  # 404 for an unknown model
    await _act(repo, settings, _rescan)
    return ModelSummary.of(repo, name)


@router.post("/models/{name}/load", response_model=ModelSummary)
async def load_model(repo: Repo, settings: AppSettings, name: str) -> ModelSummary:
    """Serve a model again after an unload (its versions per policy)."""
    repo.entry(name)
    await _act(repo, settings, _set_enabled(name, True))
    return ModelSummary.of(repo, name)


@router.post("/models/{name}/unload", response_model=ModelSummary)
async def unload_model(repo: Repo, settings: AppSettings, name: str) -> ModelSummary:
    """Stop serving every version (in-flight requests finish first) until a load."""
    repo.entry(name)
    await _act(repo, settings, _set_enabled(name, False))
    return ModelSummary.of(repo, name)


@router.put("/models/{name}/labels/{label}", response_model=ModelSummary)
async def set_label(repo: Repo, settings: AppSettings, name: str, label: str,
                    body: LabelBody) -> ModelSummary:
    """Point a version label (e.g. stable, canary) at an available version."""
    repo.entry(name)

    def change(state: AdminState) -> None:
        state.model(name).labels[label] = body.version

    await _act(repo, settings, change)
    return ModelSummary.of(repo, name)
