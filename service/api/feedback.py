"""Feedback on served predictions: a client says what a captured picture really was;
per version, how the model does on what it serves (``service.capture``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import AliasChoices, BaseModel, Field, ValidationError

from cnnlab.captures import VersionFeedback
from service.api.deps import Plane
from service.api.schemas import ERRORS
from service.capture.writer import GATHER_S, CaptureWriter
from service.dataplane.plane import DataPlane
from service.dataplane.requests import ModelRef
from service.errors import Conflict, NotFound, Unprocessable, UnsupportedMedia
from service.runtime.metrics import Metrics

router = APIRouter(prefix="/api/models", tags=["feedback"])

# How many writer intervals (GATHER_S each) feedback on a prediction this worker did not
# capture waits for another worker (or replica) sharing the store to write it
OTHERS_WRITE_INTERVALS = 4


class FeedbackBody(BaseModel):
    prediction_id: Annotated[str, Field(
        min_length=1, max_length=64,
        validation_alias=AliasChoices("prediction_id", "request_id"),
        description="the prediction's id: its answer's X-Prediction-ID header (or "
        "prediction_id field); request_id is taken as another name for it")]
    label: str | int = Field(description="the true class: its label (e.g. \"7\", "
                             "\"Ankle boot\") or its index")
    position: int = Field(default=0, ge=0, lt=2**31, description="which picture of the "
                          "request (0: the first)")


class FeedbackTaken(BaseModel):
    model: str
    version: int
    prediction_id: str
    position: int
    class_index: int
    label: str


class VersionFeedbackInfo(BaseModel):
    version: int
    captured: int = Field(description="pictures of this version in the capture store")
    labelled: int = Field(description="of them, given their true class")
    accuracy: float | None = Field(description="on the labelled ones")
    out_of_distribution_rate: float | None = Field(
        description="share of the labelled ones the version called not in distribution")
    confusion_matrix: list[list[int]] = Field(description="rows: true class, columns: "
                                              "predicted class")
    test_accuracy: float | None = Field(description="on the test set (metadata.json)")


class FeedbackSummary(BaseModel):
    model: str
    class_names: list[str]
    versions: list[VersionFeedbackInfo]


def _writer(plane: DataPlane) -> CaptureWriter:
    if plane.capture is None:
        raise Conflict("capture is off (CNNLAB_CAPTURE_RATE=0): there are no served "
                       "pictures to give feedback on")
    return plane.capture


def _shared(plane: DataPlane, writer: CaptureWriter) -> bool:
    """Whether other processes write to this worker's capture store: other workers, or
    replicas sharing a database server."""
    return plane.settings.workers > 1 or not writer.store.sqlite_file


def class_index(label: str | int, class_names: list[str]) -> int:
    """The index of ``label`` (a class name or an index) among ``class_names``."""
    if isinstance(label, int):
        if 0 <= label < len(class_names):
            return label
    elif label in class_names:
        return class_names.index(label)
    raise Unprocessable(f"label {label!r} is not a class of this model (classes: "
                        f"{', '.join(class_names)}; or their index)")


def _gauges(metrics: Metrics, model: str, rows: list[VersionFeedback]) -> None:
    for row in rows:
        labels = (model, str(row.version))
        metrics.feedback_labelled.labels(*labels).set(row.labelled)
        if row.labelled:
            metrics.feedback_accuracy.labels(*labels).set(row.correct / row.labelled)
            metrics.feedback_ood_rate.labels(*labels).set(
                row.out_of_distribution / row.labelled)


# Labels become training data: the body must be declared JSON, which no form on another
# site can send without the browser asking this server first (CORS is off by default).
FEEDBACK_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": FeedbackBody.model_json_schema()}}}}


async def _feedback_body(request: Request) -> FeedbackBody:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise UnsupportedMedia(f"feedback is a JSON body (Content-Type: application/json), "
                               f"not {kind or 'untyped'}")
    try:
        return FeedbackBody.model_validate_json(await request.body())
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "body"
        raise Unprocessable(f"{where}: {problem['msg']}") from None


@router.post("/{name}/feedback", response_model=FeedbackTaken, responses=ERRORS,
             openapi_extra=FEEDBACK_BODY)
async def give_feedback(request: Request, plane: Plane, name: str) -> FeedbackTaken:
    """Tell the service the true class of a captured picture (by its prediction's id);
    404 when that prediction was not captured (capture keeps a sample)."""
    body = await _feedback_body(request)
    writer = _writer(plane)
    store = writer.store
    names = plane.resolve(ModelRef(name)).info.class_names
    index = class_index(body.label, names)

    def record(flush: bool) -> tuple[int | None, list[VersionFeedback]]:
        version = store.label(name, body.prediction_id, body.position, index)
        if version is None and flush and writer.flush():  # this worker's, not written yet
            version = store.label(name, body.prediction_id, body.position, index)
        return version, store.feedback(name, len(names)) if version is not None else []

    version, rows = await plane.run(record, True)
    if version is None and _shared(plane, writer):
        # another worker (or a replica) may have answered the prediction a moment ago: its
        # writer stores it within an interval or two
        for _ in range(OTHERS_WRITE_INTERVALS):
            await asyncio.sleep(GATHER_S)
            version, rows = await plane.run(record, False)
            if version is not None:
                break
    if version is None:
        raise NotFound(f"no captured picture {body.position} of prediction "
                       f"{body.prediction_id!r} for model {name!r} (capture keeps "
                       f"{plane.settings.capture_rate:.0%} of upload requests)")
    _gauges(request.app.state.metrics, name, rows)
    return FeedbackTaken(model=name, version=version, prediction_id=body.prediction_id,
                         position=body.position, class_index=index, label=names[index])


@router.get("/{name}/feedback", response_model=FeedbackSummary, responses=ERRORS)
async def feedback_summary(request: Request, plane: Plane, name: str) -> FeedbackSummary:
    """Per version: captured and labelled pictures, accuracy, confusion matrix and
    out-of-distribution rate on them, beside the test-set accuracy."""
    store = _writer(plane).store
    entry = plane.repo.entry(name)  # 404 for an unknown model
    names = plane.resolve(ModelRef(name)).info.class_names
    rows = await plane.run(store.feedback, name, len(names))
    _gauges(request.app.state.metrics, name, rows)
    served = {v: sv.info.metadata.get("test_accuracy") for v, sv in entry.served.items()}
    return FeedbackSummary(model=name, class_names=names, versions=[
        VersionFeedbackInfo(
            version=r.version, captured=r.captured, labelled=r.labelled, accuracy=r.accuracy,
            out_of_distribution_rate=(r.out_of_distribution / r.labelled
                                      if r.labelled else None),
            confusion_matrix=r.confusion_matrix, test_accuracy=served.get(r.version))
        for r in rows])
