"""Face 3: the Open Inference Protocol (KServe V2 / Triton) over HTTP/REST.

JSON tensors and the binary tensor data extension (``Inference-Header-Content-Length``),
which ``tritonclient.http`` uses by default, are both accepted and answered. Triton's
model repository extension (index, load, unload; admin) and statistics extension (per
version counts and durations, from the metrics every worker records) are served too.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from service.api.deps import AppSettings, Repo, require_admin, tag_request
from service.api.schemas import ModelReady
from service.errors import ApiError, bad_request, parse_json
from service.runtime.metrics import version_totals
from service.runtime.settings import Settings
from service.runtime.workers import pool_metrics_dir
from service.serving import inference, oip
from service.serving.repository import ModelRepository
from service.serving.version import ServedVersion

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
def _duration(totals: dict[str, float], metric: str) -> dict[str, int]:
    return {"count": int(totals.get(f"{metric}_count", 0)),
            "ns": int(totals.get(f"{metric}_sum", 0) * 1e9)}


def _version_stats(request: Request, settings: Settings, name: str,
                   version: int) -> dict[str, Any]:
    totals = version_totals(request.app.state.metrics, pool_metrics_dir(settings), name,
                            str(version))
    queue = _duration(totals, "cnnlab_queue_seconds")
    infer = _duration(totals, "cnnlab_inference_seconds")
    none = {"count": 0, "ns": 0}
    return {"name": name, "version": str(version), "last_inference": 0,
            "inference_count": int(totals.get("cnnlab_batch_size_sum", 0)),
            "execution_count": int(totals.get("cnnlab_batch_size_count", 0)),
            "inference_stats": {
                "success": {"count": queue["count"], "ns": queue["ns"] + infer["ns"]},
                "fail": none, "queue": queue, "compute_input": none,
                "compute_infer": infer, "compute_output": none},
            "batch_stats": []}


@router.get("/models/stats")
async def all_stats(request: Request, repo: Repo, settings: AppSettings) -> dict[str, Any]:
    """Statistics of every available version."""
    return {"model_stats": [_version_stats(request, settings, name, v)
                            for name in sorted(repo.models) for v in repo.models[name].served]}


@router.get("/models/{name}/stats")
async def model_stats(request: Request, repo: Repo, settings: AppSettings,
                      name: str) -> dict[str, Any]:
    """Statistics of each available version of a model: inferences (images), executions
    (batches), time queued and computing."""
    return {"model_stats": [_version_stats(request, settings, name, v)
                            for v in sorted(repo.entry(name).served)]}


@router.get("/models/{name}/versions/{version}/stats")
async def version_stats(request: Request, repo: Repo, settings: AppSettings, name: str,
                        version: str) -> dict[str, Any]:
    sv = repo.resolve(name, version)
    return {"model_stats": [_version_stats(request, settings, name, sv.version)]}


@router.get("/models/{name}")
async def model_metadata(repo: Repo, name: str) -> dict[str, Any]:
    return oip.model_metadata(repo, repo.resolve(name))


@router.get("/models/{name}/versions/{version}")
async def version_metadata(repo: Repo, name: str, version: str) -> dict[str, Any]:
    return oip.model_metadata(repo, repo.resolve(name, version))


def _ready(repo: ModelRepository, name: str, version: str | None) -> JSONResponse:
    entry = repo.entry(name)  # 404 for an unknown model
    if version is None:
        ok = bool(entry.served)
    else:
        known = {str(s.version) for s in repo.status(name)}
        if version not in known:
            raise ApiError(404, f"model {name!r} has no version {version!r}")
        ok = int(version) in entry.served
    return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 503)


_READY: dict[int | str, dict[str, Any]] = {
    200: {"model": ModelReady}, 503: {"model": ModelReady, "description": "not ready"}}


@router.get("/models/{name}/ready", responses=_READY)
async def model_ready(repo: Repo, name: str) -> JSONResponse:
    return _ready(repo, name, None)


@router.get("/models/{name}/versions/{version}/ready", responses=_READY)
async def version_ready(repo: Repo, name: str, version: str) -> JSONResponse:
    return _ready(repo, name, version)


# ------------------------------------------------------------------ infer
def _split_body(header_len: str | None, raw: bytes) -> tuple[dict[str, Any], bytes]:
    if header_len is None:
        json_part, binary = raw, b""
    else:
        if not header_len.isdigit() or int(header_len) > len(raw):
            raise bad_request(f"{HEADER_LENGTH} {header_len!r} does not fit the body "
                              f"of {len(raw)} bytes")
        json_part, binary = raw[:int(header_len)], raw[int(header_len):]
    body = parse_json(json_part, "inference request")
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise bad_request("inference request must be an object with an 'inputs' list")
    return body, binary


def _input_tensor(spec: Any, binary: bytes, offset: int, sv: ServedVersion,
                  max_images: int) -> tuple[np.ndarray, int]:
    if not isinstance(spec, dict):
        raise bad_request("each input must be an object with name, shape, datatype, data")
    name, shape, dtype = spec.get("name"), spec.get("shape"), spec.get("datatype")
    want = sv.info.input
    if name != want.name:
        raise bad_request(f"unknown input {name!r}; this model takes {want.name!r}")
    if dtype not in oip.DTYPES:
        raise bad_request(f"input {name!r}: unsupported datatype {dtype!r}")
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and d >= 0 for d in shape)):
        raise bad_request(f"input {name!r}: shape must be a list of non-negative integers")
    if shape[0] > max_images:
        raise ApiError(413, f"input {name!r}: batch of {shape[0]}; the limit is {max_images}")
    count = int(np.prod(shape))
    params = spec.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        itemsize = np.dtype(oip.DTYPES[dtype]).itemsize
        if not isinstance(size, int) or size != count * itemsize or offset + size > len(binary):
            raise bad_request(f"input {name!r}: binary_data_size {size!r} does not match "
                              f"shape {shape} of {dtype} or the body")
        values: Any = np.frombuffer(binary, oip.DTYPES[dtype], count, offset)
        offset += size
    else:
        data = spec.get("data")
        if data is None:
            raise bad_request(f"input {name!r}: no 'data' and no binary_data_size")
        try:
            values = np.asarray(data, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise bad_request(f"input {name!r}: 'data' must be numbers") from None
        if values.size != count:
            raise bad_request(f"input {name!r}: {values.size} values for shape {shape} "
                              f"({count} expected)")
    tensor = inference.to_uint8_tensor(np.asarray(values).reshape(shape), want.shape,
                                       f"input {name!r}")
    return tensor, offset


def _parse_infer(raw: bytes, header_len: str | None, sv: ServedVersion, max_images: int
                 ) -> tuple[dict[str, Any], np.ndarray]:
    """The inference request and its one input tensor (CPU-bound for large bodies)."""
    body, binary = _split_body(header_len, raw)
    if len(body["inputs"]) != 1:
        raise bad_request(f"this model takes exactly one input ({sv.info.input.name!r}), "
                          f"got {len(body['inputs'])}")
    batch, _ = _input_tensor(body["inputs"][0], binary, 0, sv, max_images)
    return body, batch


async def _infer(request: Request, repo: ModelRepository, settings: Settings, name: str,
                 version: str | None) -> Response:
    async with repo.lease(name, version) as sv:
        tag_request(request, sv.name, sv.version)
        raw = await request.body()
        body, batch = await inference.offload(
            len(raw), _parse_infer, raw, request.headers.get(HEADER_LENGTH), sv,
            settings.max_instances)
        requested = body.get("outputs") or [{"name": sv.info.output.name}]
        for out in requested:
            if not isinstance(out, dict) or out.get("name") != sv.info.output.name:
                got = out.get("name") if isinstance(out, dict) else out
                raise bad_request(f"unknown output {got!r}; this model gives "
                                  f"{sv.info.output.name!r}")
        probs = (await inference.predict(sv, batch, settings)).astype(np.float32)
    want_binary = bool((body.get("parameters") or {}).get("binary_data_output")) or any(
        (o.get("parameters") or {}).get("binary_data") for o in requested)
    out_json: dict[str, Any] = {"name": sv.info.output.name, "shape": list(probs.shape),
                                "datatype": "FP32"}
    result: dict[str, Any] = {"model_name": sv.name, "model_version": str(sv.version),
                              "outputs": [out_json]}
    if "id" in body:
        result["id"] = body["id"]
    if not want_binary:
        out_json["data"] = probs.ravel().tolist()
        return JSONResponse(result)
    blob = probs.tobytes()
    out_json["parameters"] = {"binary_data_size": len(blob)}
    header = json.dumps(result).encode()
    return Response(header + blob, media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(header))})


@router.post("/models/{name}/infer")
async def infer(request: Request, repo: Repo, settings: AppSettings, name: str) -> Response:
    return await _infer(request, repo, settings, name, None)


@router.post("/models/{name}/versions/{version}/infer")
async def infer_version(request: Request, repo: Repo, settings: AppSettings, name: str,
                        version: str) -> Response:
    return await _infer(request, repo, settings, name, version)
