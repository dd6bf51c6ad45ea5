"""Model listing and status for people and dashboards."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import Repo
from service.api.schemas import ERRORS, ModelList, ModelSummary

router = APIRouter(prefix="/api/models", tags=["models"])


@router.get("", response_model=ModelList)
async def list_models(repo: Repo) -> ModelList:
    """Every model in the repository with its versions' states."""
    return ModelList(models=[ModelSummary.of(repo, n) for n in sorted(repo.models)],
                     admin_generation=repo.admin.generation)


@router.get("/{name}", response_model=ModelSummary, responses=ERRORS)
async def get_model(repo: Repo, name: str) -> ModelSummary:
    return ModelSummary.of(repo, name)
