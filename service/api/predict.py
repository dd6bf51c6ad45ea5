"""Face 1: upload images (multipart or raw body), get ranked classes back."""

from __future__ import annotations

import base64
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import Field

from service.api.deps import PREDICTION_ID, plane_of, settings_of, tag_request
from service.api.routing import hot_post
from service.api.schemas import ERRORS, UPLOAD_BODY, ImageQuery, PredictResponse
from service.api.uploads import read_uploads
from service.dataplane.requests import ModelRef, Pictures
from service.dataplane.results import Classified
from service.images import render
from service.runtime import tracing

router = APIRouter(prefix="/api/models", tags=["predict (image upload)"])


class PredictParams(ImageQuery):
    """The query parameters of the upload prediction route."""

    top_k: int = Field(default=5, ge=1, le=100)
    include_input: bool = Field(default=False, description="return the 28x28 input as PNG")


# The body is built as plain JSON: validating a pydantic response model on every request
# costs more than the model call; PredictResponse documents it in the OpenAPI schema.
@hot_post(router, "/{name}/predict", openapi_extra=UPLOAD_BODY,
          responses={**ERRORS, 200: {"model": PredictResponse}})
async def predict(request: Request, name: str,
                  params: Annotated[PredictParams, Query()]) -> Response:
    """Classify one or many uploaded images with the newest (or a chosen) version."""
    uploads = await read_uploads(request, settings_of(request))
    result = await plane_of(request).classify(
        ModelRef(name, params.version, params.label),
        Pictures([u.data for u in uploads], params.invert, params.center))
    tag_request(request, result.model, result.version)
    filenames = [u.filename for u in uploads]
    with tracing.stage("encode"):
        body = orjson.dumps(_body(result, filenames, params))
    return Response(body, media_type="application/json",
                    headers={PREDICTION_ID: result.prediction_id})


def top_k(values: list[float], class_names: list[str], k: int) -> list[dict[str, Any]]:
    """The ``k`` most probable classes of one image's probabilities ``values`` (plain
    floats: take ``probs.tolist()`` once for a whole batch)."""
    best = sorted(range(len(values)), key=values.__getitem__, reverse=True)[:k]
    return [{"class_index": i, "label": class_names[i] if i < len(class_names) else str(i),
             "probability": values[i]} for i in best]


def _body(result: Classified, filenames: list[str | None],
          params: PredictParams) -> dict[str, Any]:
    k = min(params.top_k, result.probabilities.shape[1])
    n = len(filenames)
    scores = result.ood_score.tolist() if result.ood_score is not None else [None] * n
    inside = (result.in_distribution.tolist() if result.in_distribution is not None
              else [None] * n)
    return {"model": result.model, "version": result.version,
            "prediction_id": result.prediction_id, "predictions": [
        {
            "filename": filename,
            "top_k": top_k(row, result.class_names, k),
            "probabilities": row,
            "ood_score": score, "in_distribution": accepted,
            "inverted": prep.inverted, "centered": prep.centered,
            "original_size": list(prep.original_size),
            "input_png": base64.b64encode(
                render.encode(render.viewable(prep.pixels), "png")).decode()
            if params.include_input else None,
        }
        for filename, prep, row, score, accepted in zip(
            filenames, result.prepared, result.probabilities.tolist(), scores, inside,
            strict=True)
    ]}
