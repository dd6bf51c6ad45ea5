"""Admin: reload, load, unload models and move version labels (API key always needed)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.deps import Repo, require_admin
from service.routes.models import summary
from service.schemas import ERRORS, LabelBody, ModelList, ModelSummary

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses=ERRORS)


@router.post("/reload", response_model=ModelList)
async def reload_all(repo: Repo) -> ModelList:
    """Rescan the whole repository now (as the poller would)."""
    await repo.refresh()
    return ModelList(models=[summary(repo, n) for n in sorted(repo.models)])


@router.post("/models/{name}/reload", response_model=ModelSummary)
async def reload_model(repo: Repo, name: str) -> ModelSummary:
    repo.entry(name)
    await repo.refresh(name)
    return summary(repo, name)


@router.post("/models/{name}/load", response_model=ModelSummary)
async def load_model(repo: Repo, name: str) -> ModelSummary:
    """Serve a model again after an unload (its versions per policy)."""
    await repo.set_enabled(name, True)
    return summary(repo, name)


@router.post("/models/{name}/unload", response_model=ModelSummary)
async def unload_model(repo: Repo, name: str) -> ModelSummary:
    """Stop serving every version (in-flight requests finish first) until a load."""
    await repo.set_enabled(name, False)
    return summary(repo, name)


@router.put("/models/{name}/labels/{label}", response_model=ModelSummary)
async def set_label(repo: Repo, name: str, label: str, body: LabelBody) -> ModelSummary:
    """Point a version label (e.g. stable, canary) at an available version."""
    repo.set_label(name, label, body.version)
    return summary(repo, name)
