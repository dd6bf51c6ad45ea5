"""Model listing and status for people and dashboards."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import Repo
from service.api.schemas import ERRORS, ModelList, ModelSummary, VersionInfo
from service.serving.repository import ModelRepository

router = APIRouter(prefix="/api/models", tags=["models"])


def summary(repo: ModelRepository, name: str) -> ModelSummary:
    entry = repo.entry(name)
    latest = entry.latest()
    meta = latest.info.metadata if latest else {}
    return ModelSummary(
        name=name,
        ready=latest is not None,
        versions=[VersionInfo(**vars(s)) for s in repo.status(name)],
        labels=entry.labels,
        dataset=latest.info.dataset if latest else None,
        class_names=latest.info.class_names if latest else [],
        input_shape=latest.info.input.shape[1:] if latest else [],
        test_accuracy=meta.get("test_accuracy"),
    )


@router.get("", response_model=ModelList)
async def list_models(repo: Repo) -> ModelList:
    """Every model in the repository with its versions' states."""
    return ModelList(models=[summary(repo, n) for n in sorted(repo.models)])


@router.get("/{name}", response_model=ModelSummary, responses=ERRORS)
async def get_model(repo: Repo, name: str) -> ModelSummary:
    return summary(repo, name)
