"""Response and request bodies (pydantic), shared by the routes and the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str = Field(description="what is wrong, naming the bad value")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 415, 422, 503)
}


def media(*types: str) -> dict[int | str, dict[str, Any]]:
    """Document a 200 whose body is one of these media types (pictures, .npy, JSON)."""
    return {200: {"description": "the result", "content": {t: {} for t in types}}}


class ModelReady(BaseModel):
    name: str
    ready: bool


class TopClass(BaseModel):
    class_index: int
    label: str
    probability: float


class ImagePrediction(BaseModel):
    filename: str | None = None
    top_k: list[TopClass]
    probabilities: list[float]
    inverted: bool = Field(description="whether the image was inverted to light-on-dark")
    centered: bool = Field(description="whether MNIST-style centering was applied")
    original_size: list[int] = Field(description="[width, height] of the upload")
    input_png: str | None = Field(default=None,
                                  description="base64 PNG of the model input, on request")


class PredictResponse(BaseModel):
    model: str
    version: int
    predictions: list[ImagePrediction]


class VersionInfo(BaseModel):
    version: int
    state: str
    error: str = ""


class ModelSummary(BaseModel):
    name: str
    ready: bool
    versions: list[VersionInfo]
    labels: dict[str, int]
    dataset: str | None = None
    class_names: list[str] = []
    input_shape: list[int] = []
    test_accuracy: float | None = None


class ModelList(BaseModel):
    models: list[ModelSummary]


class LabelBody(BaseModel):
    version: int = Field(ge=1)


class HealthBody(BaseModel):
    status: str
    models: dict[str, list[VersionInfo]] = {}
    detail: str = ""
