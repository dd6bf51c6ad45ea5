"""Face 1: upload images (multipart or raw body), get ranked classes back.

The route is declared here for FastAPI (OpenAPI docs, and serving it when the fast lane is
off); ``classify_uploads`` is its whole behaviour, shared with ``service.fastlane``, which
answers the same requests without FastAPI's per-request machinery."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from service import inference
from service.config import Settings
from service.deps import AppSettings, Repo, tag_request
from service.imaging import Invert, encode_png
from service.repository import ModelRepository
from service.schemas import ERRORS, PredictResponse
from service.uploads import read_uploads

router = APIRouter(prefix="/api/models", tags=["predict (image upload)"])
PREDICT_PATH = "/api/models/{name}/predict"

VersionQ = Annotated[int | None, Query(ge=1, description="a version number (default: newest)")]
LabelQ = Annotated[str | None, Query(max_length=64, description="a version label, e.g. stable")]

_UPLOAD_BODY = {
    "requestBody": {"content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    }, "required": True}
}


class ImageQuery(BaseModel):
    """Query parameters of every route that runs one model version on uploaded images."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int | None = Field(default=None, ge=1, description="a version number "
                                "(default: newest)")
    label: str | None = Field(default=None, max_length=64,
                              description="a version label, e.g. stable")
    invert: Invert = Field(default="auto", description="auto: invert light backgrounds")
    center: bool | None = Field(default=None, description="MNIST-style centering "
                                "(default: on for digit models)")


class PredictParams(ImageQuery):
    """The query parameters of the upload prediction route."""

    top_k: int = Field(default=5, ge=1, le=100)
    include_input: bool = Field(default=False, description="return the 28x28 input as PNG")


async def classify_uploads(request: Request, repo: ModelRepository, settings: Settings,
                           name: str, params: PredictParams) -> dict[str, Any]:
    """The prediction body for one or many uploaded images (raises ``ApiError``)."""
    uploads = await read_uploads(request, settings)
    async with repo.lease(name, params.version, params.label) as sv:
        tag_request(request, sv.name, sv.version)
        prepared, probs = await inference.classify_blobs(
            sv, [u.data for u in uploads], settings, params.invert, params.center)
    k = min(params.top_k, probs.shape[1])
    names = sv.info.class_names
    return {"model": sv.name, "version": sv.version, "predictions": [
        {
            "filename": u.filename,
            "top_k": inference.top_k_json(row, names, k),
            "probabilities": row,
            "inverted": prep.inverted, "centered": prep.centered,
            "original_size": list(prep.original_size),
            "input_png": base64.b64encode(encode_png(prep.pixels)).decode()
            if params.include_input else None,
        }
        for u, prep, row in zip(uploads, prepared, probs.tolist(), strict=True)
    ]}


# The body is built as plain JSON (the hot path): re-validating a pydantic response model
# cost about 1 ms a request. PredictResponse still documents it in the OpenAPI schema.
@router.post("/{name}/predict", responses={**ERRORS, 200: {"model": PredictResponse}},
             response_class=JSONResponse, openapi_extra=_UPLOAD_BODY)
async def predict(request: Request, repo: Repo, settings: AppSettings, name: str,
                  params: Annotated[PredictParams, Query()]) -> JSONResponse:
    """Classify one or many uploaded images with the newest (or a chosen) version."""
    return JSONResponse(await classify_uploads(request, repo, settings, name, params))
