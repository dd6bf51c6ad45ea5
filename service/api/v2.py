"""Face 3: the Open Inference Protocol (KServe V2 / Triton) over HTTP/REST.

JSON tensors and the binary tensor data extension (``Inference-Header-Content-Length``),
which ``tritonclient.http`` uses by default, are both accepted and answered. Triton's
model repository extension (index, load, unload; admin) and statistics extension (per
version counts and durations, from the metrics every worker records) are served too.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from service.api.deps import PREDICTION_ID, Plane, Repo, plane_of, require_admin, tag_request
from service.api.routing import NoQuery, hot_post
from service.api.schemas import ModelReady
from service.dataplane.plane import DataPlane
from service.dataplane.requests import InferRequest, ModelRef, Tensor
from service.dataplane.results import VersionStats
from service.errors import InvalidInput, parse_json
from service.serving import oip

router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (KServe V2)"])

HEADER_LENGTH = "inference-header-content-length"


@router.get("")
async def server_metadata() -> dict[str, Any]:
    return oip.server_metadata()


# ------------------------------------------------------------------ repository extension
@router.post("/repository/index")
async def repository_index(repo: Repo) -> list[dict[str, str]]:
    """Every model and version in the repository with its state (Triton's index)."""
    return oip.repository_index(repo)


async def _repository_body(request: Request) -> None:
    """A load or unload body may carry parameters; an override config is not taken."""
    raw = await request.body()
    body = parse_json(raw, "request body") if raw.strip() else {}
    params = body.get("parameters") if isinstance(body, dict) else None
    if isinstance(params, dict):
        oip.refuse_overrides(params)


@router.post("/repository/models/{name}/load", dependencies=[Depends(require_admin)])
async def repository_load(request: Request, repo: Repo, name: str) -> dict[str, Any]:
    """Serve a model (again): its versions per policy, in every worker."""
    repo.entry(name)  # 404 for an unknown model
    await _repository_body(request)
    await repo.administer(lambda state: state.load(name))
    return {}


@router.post("/repository/models/{name}/unload", dependencies=[Depends(require_admin)])
async def repository_unload(request: Request, repo: Repo, name: str) -> dict[str, Any]:
    """Stop serving a model (in-flight requests finish first), in every worker."""
    repo.entry(name)
    await _repository_body(request)
    await repo.administer(lambda state: state.unload(name))
    return {}


# ------------------------------------------------------------------ statistics extension
def _stats(rows: list[VersionStats]) -> dict[str, Any]:
    none = {"count": 0, "ns": 0}
    return {"model_stats": [{
        "name": st.name, "version": str(st.version), "last_inference": st.last_inference_ms,
        "inference_count": st.inferences, "execution_count": st.executions,
        "inference_stats": {
            "success": {"count": st.queue_count, "ns": st.queue_ns + st.compute_ns},
            "fail": none, "queue": {"count": st.queue_count, "ns": st.queue_ns},
            "compute_input": none,
            "compute_infer": {"count": st.compute_count, "ns": st.compute_ns},
            "compute_output": none},
        "batch_stats": []} for st in rows]}


@router.get("/models/stats")
async def all_stats(plane: Plane) -> dict[str, Any]:
    """Statistics of every available version."""
    return _stats(plane.statistics())


@router.get("/models/{name}/stats")
async def model_stats(plane: Plane, name: str) -> dict[str, Any]:
    """Statistics of each available version of a model: inferences (images), executions
    (batches), time queued and computing."""
    return _stats(plane.statistics(name))


@router.get("/models/{name}/versions/{version}/stats")
async def version_stats(plane: Plane, name: str, version: str) -> dict[str, Any]:
    return _stats(plane.statistics(name, version))


@router.get("/models/{name}")
async def model_metadata(plane: Plane, name: str) -> dict[str, Any]:
    return oip.model_metadata(plane.repo, plane.resolve(ModelRef(name)))


@router.get("/models/{name}/versions/{version}")
async def version_metadata(plane: Plane, name: str, version: str) -> dict[str, Any]:
    return oip.model_metadata(plane.repo, plane.resolve(ModelRef(name, version)))


def _ready(plane: DataPlane, name: str, version: str | None) -> JSONResponse:
    ok = plane.ready(name, version)
    return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 503)


_READY: dict[int | str, dict[str, Any]] = {
    200: {"model": ModelReady}, 503: {"model": ModelReady, "description": "not ready"}}


@router.get("/models/{name}/ready", responses=_READY)
async def model_ready(plane: Plane, name: str) -> JSONResponse:
    return _ready(plane, name, None)


@router.get("/models/{name}/versions/{version}/ready", responses=_READY)
async def version_ready(plane: Plane, name: str, version: str) -> JSONResponse:
    return _ready(plane, name, version)


# ------------------------------------------------------------------ infer
def _split_body(header_len: str | None, raw: bytes) -> tuple[bytes, memoryview]:
    """The JSON part and the binary part (binary tensor data extension) of a body."""
    if header_len is None:
        return raw, memoryview(b"")
    if not (header_len.isascii() and header_len.isdigit()) or int(header_len) > len(raw):
        raise InvalidInput(f"{HEADER_LENGTH} {header_len!r} does not fit the body "
                           f"of {len(raw)} bytes")
    return raw[:int(header_len)], memoryview(raw)[int(header_len):]


def _tensor(spec: object, binary: memoryview, offset: int) -> tuple[Tensor, int]:
    """One input of the request as declared; its binary data follows at ``offset``."""
    if not isinstance(spec, dict):
        raise InvalidInput("each input must be an object with name, shape, datatype, data")
    name = spec.get("name")
    what = f"input {name!r}"
    shape = oip.tensor_shape(spec.get("shape"), what)
    dtype = oip.numpy_name(spec.get("datatype"), what)
    params = spec.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise InvalidInput(f"{what}: binary_data_size {size!r} does not fit the body")
        return Tensor(str(name), dtype, shape, bytes(binary[offset:offset + size])), \
            offset + size
    data = spec.get("data")
    if not isinstance(data, list):
        raise InvalidInput(f"{what}: no 'data' list and no binary_data_size")
    return Tensor(str(name), dtype, shape, data), offset


def _request(body: object, binary: memoryview, ref: ModelRef) -> InferRequest:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise InvalidInput("inference request must be an object with an 'inputs' list")
    inputs, offset = [], 0
    for spec in body["inputs"]:
        tensor, offset = _tensor(spec, binary, offset)
        inputs.append(tensor)
    requested = body.get("outputs") or []
    if not isinstance(requested, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested):
        raise InvalidInput("'outputs' must be a list of objects with a 'name'")
    counts = {o["name"]: oip.class_count(o.get("parameters"), f"output {o['name']!r}")
              for o in requested}
    return InferRequest(ref, inputs, outputs=tuple(o["name"] for o in requested),
                        class_counts={k: v for k, v in counts.items() if v is not None},
                        json_answer=not _wants_binary(body))


def _wants_binary(body: dict[str, Any]) -> bool:
    params = body.get("parameters")
    if isinstance(params, dict) and params.get("binary_data_output"):
        return True
    return any(isinstance(o.get("parameters"), dict) and o["parameters"].get("binary_data")
               for o in body.get("outputs") or [])


async def _infer(request: Request, ref: ModelRef) -> Response:
    plane = plane_of(request)
    plane.resolve(ref)  # an unknown model or version is told before the body is read
    json_part, binary = _split_body(request.headers.get(HEADER_LENGTH),
                                    await request.body())
    body = await plane.parse(json_part, "inference request")
    result = await plane.infer(_request(body, binary, ref))
    tag_request(request, result.model, result.version)
    assert isinstance(body, dict)  # (checked by _request)
    answer: dict[str, Any] = {"model_name": result.model, "model_version": str(result.version),
                              "outputs": []}
    # the client's id when it gave one (the protocol echoes it), else the prediction's
    answer["id"] = body.get("id", result.prediction_id)
    blobs = []
    for key, value in result.outputs.items():
        value = value.astype(np.float32, copy=False) if value.dtype == np.float64 else value
        out: dict[str, Any] = {"name": key, "shape": list(value.shape),
                               "datatype": oip.datatype(value.dtype.name)}
        if _wants_binary(body):
            blobs.append(oip.raw_bytes(value))
            out["parameters"] = {"binary_data_size": len(blobs[-1])}
        elif value.dtype == np.object_:  # BYTES (classification strings)
            out["data"] = [v.decode() for v in value.ravel()]
        else:
            out["data"] = value.ravel()
        answer["outputs"].append(out)
    header = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    ids = {PREDICTION_ID: result.prediction_id}
    if not blobs:
        return Response(header, media_type="application/json", headers=ids)
    return Response(header + b"".join(blobs), media_type="application/octet-stream",
                    headers={**ids, "Inference-Header-Content-Length": str(len(header))})


@hot_post(router, "/models/{name}/infer")
async def infer(request: Request, name: str, params: Annotated[NoQuery, Query()]) -> Response:
    """Infer with the newest version: JSON tensors, or binary tensor data."""
    return await _infer(request, ModelRef(name))


@router.post("/models/{name}/versions/{version}/infer")
async def infer_version(request: Request, name: str, version: str) -> Response:
    return await _infer(request, ModelRef(name, version))
