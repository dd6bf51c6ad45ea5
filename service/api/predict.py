"""Face 1: upload images (multipart or raw body), get ranked classes back."""

from __future__ import annotations

import base64

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from service.api.deps import repo_of, settings_of, tag_request
from service.api.routing import hot_post
from service.api.schemas import ERRORS, UPLOAD_BODY, ImageQuery, PredictResponse
from service.api.uploads import read_uploads
from service.images import render
from service.images.preprocess import stack
from service.serving import inference

router = APIRouter(prefix="/api/models", tags=["predict (image upload)"])


class PredictParams(ImageQuery):
    """The query parameters of the upload prediction route."""

    top_k: int = Field(default=5, ge=1, le=100)
    include_input: bool = Field(default=False, description="return the 28x28 input as PNG")


# The body is built as plain JSON: validating a pydantic response model on every request
# costs more than the model call; PredictResponse documents it in the OpenAPI schema.
@hot_post(router, "/{name}/predict", PredictParams, openapi_extra=UPLOAD_BODY,
          responses={**ERRORS, 200: {"model": PredictResponse}})
async def predict(request: Request, name: str, params: PredictParams) -> Response:
    """Classify one or many uploaded images with the newest (or a chosen) version."""
    repo, settings = repo_of(request), settings_of(request)
    uploads = await read_uploads(request, settings)
    async with repo.lease(name, params.version, params.label) as sv:
        tag_request(request, sv.name, sv.version)
        prepared = await inference.prepare_uploads(
            sv.info, [u.data for u in uploads], settings, params.invert, params.center)
        probs = await inference.predict(sv, stack(prepared), settings)
    k = min(params.top_k, probs.shape[1])
    names = sv.info.class_names
    body = {"model": sv.name, "version": sv.version, "predictions": [
        {
            "filename": upload.filename,
            "top_k": inference.top_k(row, names, k),
            "probabilities": row,
            "inverted": prep.inverted, "centered": prep.centered,
            "original_size": list(prep.original_size),
            "input_png": base64.b64encode(render.encode(prep.pixels, "png")).decode()
            if params.include_input else None,
        }
        for upload, prep, row in zip(uploads, prepared, probs.tolist(), strict=True)
    ]}
    return Response(orjson.dumps(body), media_type="application/json")
