"""Admin: reload, load, unload models and move version labels (API key always needed).

An action is applied by the worker that takes the request, written to the admin state
file, and answered once every live worker has applied it (``ModelRepository.administer``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.api.deps import Repo, require_admin
from service.api.schemas import ERRORS, LabelBody, ModelList, ModelSummary
from service.serving.admin_state import AdminState

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses=ERRORS)


@router.post("/reload", response_model=ModelList)
async def reload_all(repo: Repo) -> ModelList:
    """Rescan the whole repository now (as the poller would), in every worker."""
    await repo.administer(AdminState.rescan)
    return ModelList(models=[ModelSummary.of(repo, n) for n in sorted(repo.models)])


@router.post("/models/{name}/reload", response_model=ModelSummary)
async def reload_model(repo: Repo, name: str) -> ModelSummary:
    repo.entry(name)  # 404 for an unknown model
    await repo.administer(AdminState.rescan)
    return ModelSummary.of(repo, name)


@router.post("/models/{name}/load", response_model=ModelSummary)
async def load_model(repo: Repo, name: str) -> ModelSummary:
    """Serve a model again after an unload (its versions per policy)."""
    repo.entry(name)
    await repo.administer(lambda state: state.load(name))
    return ModelSummary.of(repo, name)


@router.post("/models/{name}/unload", response_model=ModelSummary)
async def unload_model(repo: Repo, name: str) -> ModelSummary:
    """Stop serving every version (in-flight requests finish first) until a load."""
    repo.entry(name)
    await repo.administer(lambda state: state.unload(name))
    return ModelSummary.of(repo, name)


@router.put("/models/{name}/labels/{label}", response_model=ModelSummary)
async def set_label(repo: Repo, name: str, label: str,
                    body: LabelBody) -> ModelSummary:
    """Point a version label (e.g. stable, canary) at an available version."""
    repo.entry(name)
    await repo.administer(lambda state: state.label(name, label, body.version))
    return ModelSummary.of(repo, name)
