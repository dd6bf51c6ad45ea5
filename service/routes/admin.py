"""Admin: reload, load, unload models and move version labels (API key always needed).

Every action reaches every worker process (``service.peers``), not just the one that
took the request."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service import peers
from service.deps import AppSettings, Repo, require_admin
from service.peers import AdminAction
from service.routes.models import summary
from service.schemas import ERRORS, LabelBody, ModelList, ModelSummary
from service.workers import pool_peers_dir

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses=ERRORS)


async def _act(repo: Repo, settings: AppSettings, action: AdminAction) -> None:
    await peers.act(repo, pool_peers_dir(settings), action)


@router.post("/reload", response_model=ModelList)
async def reload_all(repo: Repo, settings: AppSettings) -> ModelList:
    """Rescan the whole repository now (as the poller would)."""
    await _act(repo, settings, AdminAction("reload"))
    return ModelList(models=[summary(repo, n) for n in sorted(repo.models)])


@router.post("/models/{name}/reload", response_model=ModelSummary)
async def reload_model(repo: Repo, settings: AppSettings, name: str) -> ModelSummary:
    await _act(repo, settings, AdminAction("reload", name))
    return summary(repo, name)


@router.post("/models/{name}/load", response_model=ModelSummary)
async def load_model(repo: Repo, settings: AppSettings, name: str) -> ModelSummary:
    """Serve a model again after an unload (its versions per policy)."""
    await _act(repo, settings, AdminAction("load", name))
    return summary(repo, name)


@router.post("/models/{name}/unload", response_model=ModelSummary)
async def unload_model(repo: Repo, settings: AppSettings, name: str) -> ModelSummary:
    """Stop serving every version (in-flight requests finish first) until a load."""
    await _act(repo, settings, AdminAction("unload", name))
    return summary(repo, name)


@router.put("/models/{name}/labels/{label}", response_model=ModelSummary)
async def set_label(repo: Repo, settings: AppSettings, name: str, label: str,
                    body: LabelBody) -> ModelSummary:
    """Point a version label (e.g. stable, canary) at an available version."""
    await _act(repo, settings, AdminAction("label", name, label, body.version))
    return summary(repo, name)
