"""Request and response shapes (pydantic) shared by the routes and the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from cnnlab.uploads import Invert
from service.serving.repository import ModelRepository

VersionQ = Annotated[int | None, Query(ge=1, description="a version number (default: newest)")]
LabelQ = Annotated[str | None, Query(max_length=64, description="a version label, e.g. stable")]
InvertQ = Annotated[Invert, Query(description="auto: invert light backgrounds")]
CenterQ = Annotated[bool | None, Query(description="MNIST-style centering (default: digits)")]

# The request body of every route that takes pictures (read by service.api.uploads).
UPLOAD_BODY = {
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


class ErrorBody(BaseModel):
    error: str = Field(description="what is wrong, naming the bad value")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 415, 422, 503)
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
    ood_score: float | None = Field(
        default=None, description="how unlike the version's training data the picture is, "
        "after the same preprocessing (squared Mahalanobis distance of its features to the "
        "nearest class; null when the version has no such score)")
    in_distribution: bool | None = Field(
        default=None, description="false when the picture does not look like anything the "
        "model was trained on (ood_score above the version's threshold, which accepts 95 % "
        "of held-out test pictures); null when the version has no such score")
    input_png: str | None = Field(default=None,
                                  description="base64 PNG of the model input, on request")


class PredictResponse(BaseModel):
    model: str
    version: int
    prediction_id: str = Field(description="this prediction's own id (also the "
                               "X-Prediction-ID header): give it with feedback")
    predictions: list[ImagePrediction]


class VersionInfo(BaseModel):
    version: int
    state: str
    error: str = ""


class Calibration(BaseModel):
    """How the served probabilities were calibrated (temperature scaling)."""

    temperature: float = Field(description="the logits are divided by it")
    ece_before: float = Field(description="expected calibration error before, 15 bins")
    ece_after: float = Field(description="expected calibration error of the served "
                             "probabilities")
    ece_after_cross_fitted: float | None = Field(
        default=None, description="the same out of sample, when the temperature was fitted "
        "on the pictures it is measured on: fitted on one half, measured on the other, "
        "both ways round")
    ece_after_by_part: dict[str, float] = Field(
        default={}, description="the served probabilities' expected calibration error on "
        "each part of the pictures measured on: as stored, as the service prepares their "
        "uploads, as users send them (blurred, blown up, on grey paper...), printed")
    fitted_on: str
    measured_on: str


class OodScore(BaseModel):
    """How the version scores pictures unlike its training data."""

    method: str
    threshold: float = Field(description="ood_score above it: not in distribution")
    accepts: float = Field(description="share of each kind of held-out in-distribution "
                           "picture (as stored, uploaded, sent, printed) the threshold was "
                           "set to accept at least")
    accepted_on_check: float = Field(description="share accepted of other held-out "
                                     "pictures")
    accepted_cross_fitted: float | None = Field(
        default=None, description="the share accepted out of sample, when the threshold "
        "was set on the pictures it is checked on: set on one half, checked on the other, "
        "both ways round")
    accepted_by_part: dict[str, float] = Field(
        default={}, description="the share accepted of each part of the pictures it is "
        "checked on: as stored, as the service prepares their uploads, as users send them "
        "(blurred, blown up, on grey paper...), printed")
    threshold_fitted_on: str
    measured_on: str


class ModelSummary(BaseModel):
    name: str
    ready: bool
    versions: list[VersionInfo]
    labels: dict[str, int]
    unavailable_labels: list[str] = Field(
        default=[], description="labels whose version is not served now (unloaded, "
        "removed or outside the version policy): requests through them get 409 until it is")
    dataset: str | None = None
    class_names: list[str] = []
    input_shape: list[int] = []
    test_accuracy: float | None = None
    test_ece: float | None = Field(default=None, description="expected calibration error, "
                                   "15 confidence bins, on the test set")
    calibration: Calibration | None = None
    ood: OodScore | None = None
    admin_generation: int = Field(
        default=0, description="the generation of the admin state (labels, unloads) the "
        "answering worker serves: every replica on the same model repository converges to "
        "the newest within a moment of its writing")

    @classmethod
    def of(cls, repo: ModelRepository, name: str) -> ModelSummary:
        """Model ``name`` as the repository serves it now (404 if unknown)."""
        entry = repo.entry(name)
        latest = entry.latest()
        return cls(
            name=name,
            ready=latest is not None,
            versions=[VersionInfo(**vars(s)) for s in repo.status(name)],
            labels=repo.labels(name),
            unavailable_labels=repo.unavailable_labels(name),
            dataset=latest.info.dataset if latest else None,
            class_names=latest.info.class_names if latest else [],
            input_shape=latest.info.input.shape[1:] if latest else [],
            test_accuracy=latest.info.metadata.get("test_accuracy") if latest else None,
            test_ece=latest.info.metadata.get("test_ece") if latest else None,
            calibration=latest.info.metadata.get("calibration") if latest else None,
            ood=latest.info.metadata.get("ood") if latest else None,
            admin_generation=repo.admin.generation,
        )


class ModelList(BaseModel):
    models: list[ModelSummary]
    admin_generation: int = Field(
        default=0, description="the generation of the admin state the answering worker "
        "serves (after an admin change: the one it wrote)")


class LabelBody(BaseModel):
    version: int = Field(ge=1)


class HealthBody(BaseModel):
    status: str
    models: dict[str, list[VersionInfo]] = {}
    detail: str = ""
