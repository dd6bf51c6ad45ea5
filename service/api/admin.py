"""Admin: reload, load, unload models and move version labels (API key always needed).

An action is applied by the worker that takes the request, written to the admin state
file, and answered once every live worker has applied it (``ModelRepository.administer``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from service.api.deps import Repo, require_admin
from service.api.schemas import ERRORS, LabelBody, ModelList, ModelSummary
from service.errors import Conflict, NotFound
from service.serving.admin_state import AdminState

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses=ERRORS)


@router.post("/reload", response_model=ModelList)
async def reload_all(repo: Repo) -> ModelList:
    """Rescan the whole repository now (as the poller would), in every worker."""
    await repo.administer(AdminState.rescan)
    return ModelList(models=[ModelSummary.of(repo, n) for n in sorted(repo.models)],
                     admin_generation=repo.admin.generation)


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


# JSON bodies are read whatever their declared type (``curl -d`` says form-encoded), as the
# V1 and V2 routes read theirs; admin calls always carry the key, so no browser form can
# make one.
LABEL_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": LabelBody.model_json_schema()}}}}


@router.put("/models/{name}/labels/{label}", response_model=ModelSummary,
            openapi_extra=LABEL_BODY)
async def set_label(repo: Repo, name: str, label: str, request: Request) -> ModelSummary:
    """Point a version label (e.g. stable, canary) at a version served now (409 if it
    is not). The label stays if that version later stops being served: requests through
    it get 409 and the summary lists it under ``unavailable_labels``."""
    body = LabelBody.model_validate_json(await request.body())
    served = repo.entry(name).served
    if body.version not in served:
        raise Conflict(f"cannot point label {label!r} at version {body.version} of "
                       f"{name!r}: it is not served now (served: {sorted(served) or 'none'})")
    await repo.administer(lambda state: state.label(name, label, body.version))
    return ModelSummary.of(repo, name)


@router.delete("/models/{name}/labels/{label}", response_model=ModelSummary)
async def delete_label(repo: Repo, name: str, label: str) -> ModelSummary:
    """Remove a label the admin set (404 if there is none; 409 for a label set by
    ``CNNLAB_VERSION_LABELS``, which only the setting changes)."""
    repo.entry(name)
    if label not in repo.admin.model_labels(name):
        if label in repo.labels(name):
            raise Conflict(f"label {label!r} of {name!r} is set by CNNLAB_VERSION_LABELS; "
                           "change that setting to remove it")
        raise NotFound(f"model {name!r} has no version label {label!r}")
    await repo.administer(lambda state: state.unlabel(name, label))
    return ModelSummary.of(repo, name)
