"""Face 2: TensorFlow Serving's REST API (status, metadata, :predict), same JSON in and out.

``{"b64": "..."}`` values are taken as encoded image files (PNG/JPEG/...) and go through
the same preprocessing as uploads; plain nested lists are pixel values 0..255.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from service.api.deps import AppSettings, Repo, repo_of, settings_of, tag_request
from service.api.routing import hot_post
from service.errors import ApiError, bad_request, parse_json
from service.runtime.settings import Settings
from service.serving import inference
from service.serving.repository import ModelRepository
from service.serving.version import PREDICT_SIGNATURE, ServedVersion, signature_io

router = APIRouter(prefix="/v1/models", tags=["TensorFlow Serving REST"])

_DT = {"uint8": "DT_UINT8", "float32": "DT_FLOAT", "int32": "DT_INT32", "int64": "DT_INT64",
       "float64": "DT_DOUBLE", "bool": "DT_BOOL"}


def _status(repo: ModelRepository, name: str, version: str | None,
            label: str | None) -> dict[str, Any]:
    rows = repo.status(name)
    if label is not None:
        version = str(repo.resolve(name, label=label).version)
    if version is not None:
        rows = [r for r in rows if str(r.version) == version]
        if not rows:
            raise ApiError(404, f"model {name!r} has no version {version!r}")
    return {"model_version_status": [
        {"version": str(r.version), "state": r.state,
         "status": {"error_code": "UNKNOWN" if r.error else "OK", "error_message": r.error}}
        for r in rows]}


def _tensor_def(sig: str, name: str, dtype: str, shape: list[int]) -> dict[str, Any]:
    return {"dtype": _DT.get(dtype, "DT_INVALID"),
            "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in shape],
                             "unknown_rank": False},
            "name": f"{sig}_{name}:0"}


def _metadata(sv: ServedVersion) -> dict[str, Any]:
    defs = {}
    for sig, fn in sv.signatures.items():
        inputs, outputs = signature_io(fn)
        defs[sig] = {
            "inputs": {k: _tensor_def(sig, k, t.dtype, t.shape) for k, t in inputs.items()},
            "outputs": {k: _tensor_def(sig, k, t.dtype, t.shape) for k, t in outputs.items()},
            "method_name": "tensorflow/serving/predict",
            "defaults": {},
        }
    return {"model_spec": {"name": sv.name, "signature_name": "", "version": str(sv.version)},
            "metadata": {"signature_def": {"signature_def": defs}}}


@router.get("/{name}")
async def model_status(repo: Repo, name: str) -> dict[str, Any]:
    return _status(repo, name, None, None)


@router.get("/{name}/versions/{version}")
async def version_status(repo: Repo, name: str, version: str) -> dict[str, Any]:
    return _status(repo, name, version, None)


@router.get("/{name}/labels/{label}")
async def label_status(repo: Repo, name: str, label: str) -> dict[str, Any]:
    return _status(repo, name, None, label)


@router.get("/{name}/metadata")
async def model_metadata(repo: Repo, name: str) -> dict[str, Any]:
    return _metadata(repo.resolve(name))


@router.get("/{name}/versions/{version}/metadata")
async def version_metadata(repo: Repo, name: str, version: str) -> dict[str, Any]:
    return _metadata(repo.resolve(name, version))


@router.get("/{name}/labels/{label}/metadata")
async def label_metadata(repo: Repo, name: str, label: str) -> dict[str, Any]:
    return _metadata(repo.resolve(name, label=label))


# ------------------------------------------------------------------ :predict
def _b64_bytes(value: dict[str, Any], where: str) -> bytes:
    try:
        return base64.b64decode(str(value["b64"]), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{where}: 'b64' is not valid base64") from None


def _instances_to_batch(values: list[Any], sv: ServedVersion, settings: Settings) -> np.ndarray:
    """The model input ``[N,H,W,C]`` of ``values``: rows of pixel values, or encoded
    pictures (``{"b64": ...}``) preprocessed as uploads are, in any mix."""
    name, shape = sv.info.input.name, sv.info.input.shape
    if not values:
        raise bad_request("'instances' is empty")
    if len(values) > settings.max_instances:
        raise ApiError(413, f"{len(values)} instances; the limit is {settings.max_instances}")
    if not any(isinstance(v, dict) for v in values):  # plain numbers only
        return inference.to_uint8_tensor(values, shape, "instances")
    rows: list[np.ndarray | bytes] = []
    for i, v in enumerate(values):
        where = f"instances[{i}]"
        if isinstance(v, dict) and "b64" not in v:
            if set(v) != {name}:
                raise bad_request(f"{where}: named inputs must be exactly {{{name!r}}}, "
                                  f"got {sorted(v)}")
            v = v[name]
        if isinstance(v, dict) and "b64" in v:
            rows.append(_b64_bytes(v, where))
        else:
            rows.append(inference.to_uint8_tensor([v], shape, where)[0])
    pictures = [r for r in rows if isinstance(r, bytes)]
    prepared = iter(inference.pictures_input(sv.info, pictures, settings))
    return np.stack([r if isinstance(r, np.ndarray) else next(prepared) for r in rows])


def _inputs_to_batch(inputs: Any, sv: ServedVersion, settings: Settings) -> np.ndarray:
    name = sv.info.input.name
    if isinstance(inputs, dict) and "b64" not in inputs:
        if set(inputs) != {name}:
            raise bad_request(f"'inputs' must name exactly {{{name!r}}}, got {sorted(inputs)}")
        inputs = inputs[name]
    if isinstance(inputs, dict):  # a single b64 value
        inputs = [inputs]
    if not isinstance(inputs, list):
        raise bad_request("'inputs' must be a list (a batch) or an object of named inputs")
    return _instances_to_batch(inputs, sv, settings)


def _parse_predict(raw: bytes, sv: ServedVersion, settings: Settings
                   ) -> tuple[dict[str, Any], np.ndarray]:
    """The request body and the model input it carries (CPU-bound for large bodies)."""
    body = parse_json(raw, "request body")
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object with 'instances' or 'inputs'")
    if ("instances" in body) == ("inputs" in body):
        raise bad_request("send exactly one of 'instances' (row format) or 'inputs' "
                          "(columnar format)")
    signature = body.get("signature_name") or PREDICT_SIGNATURE
    if signature not in sv.signatures:
        raise bad_request(f"signature {signature!r} not found; this model has "
                          f"{sorted(sv.signatures)}")
    if "instances" in body:
        if not isinstance(body["instances"], list):
            raise bad_request("'instances' must be a list, one entry per image")
        return body, _instances_to_batch(body["instances"], sv, settings)
    return body, _inputs_to_batch(body["inputs"], sv, settings)


async def _run(sv: ServedVersion, batch: np.ndarray, settings: Settings, signature: str
               ) -> dict[str, np.ndarray]:
    """The signature's outputs for ``batch`` (serving_default's through the batcher)."""
    if signature == PREDICT_SIGNATURE:
        return {sv.info.output.name: await inference.predict(sv, batch, settings)}
    inputs, _ = signature_io(sv.signatures[signature])
    if set(inputs) != {sv.info.input.name}:
        raise bad_request(f"signature {signature!r} needs inputs {sorted(inputs)}; "
                          "only image-only signatures can be called here")
    return await inference.call_signature(sv, signature, **{sv.info.input.name: batch})


async def _predict(request: Request, repo: ModelRepository, settings: Settings, name: str,
                   version: str | None, label: str | None) -> Response:
    async with repo.lease(name, version, label) as sv:
        tag_request(request, sv.name, sv.version)
        raw = await request.body()
        body, batch = await inference.offload(len(raw), _parse_predict, raw, sv, settings)
        out = await _run(sv, batch, settings, body.get("signature_name") or PREDICT_SIGNATURE)
    row = "instances" in body
    if len(out) == 1:
        value = next(iter(out.values())).tolist()
        return _json({"predictions": value} if row else {"outputs": value})
    if row:
        return _json({"predictions": [{k: v[i].tolist() for k, v in out.items()}
                                      for i in range(len(batch))]})
    return _json({"outputs": {k: v.tolist() for k, v in out.items()}})


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


class NoQuery(BaseModel):
    """``:predict`` takes no query parameters (TF Serving ignores any, as FastAPI does)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


@hot_post(router, "/{name}:predict", NoQuery)
async def predict(request: Request, name: str, params: NoQuery) -> Response:
    """Predict with the newest version: ``instances`` (rows) or ``inputs`` (columns)."""
    return await _predict(request, repo_of(request), settings_of(request), name, None, None)


@router.post("/{name}/versions/{version}:predict")
async def predict_version(request: Request, repo: Repo, settings: AppSettings, name: str,
                          version: str) -> Response:
    return await _predict(request, repo, settings, name, version, None)


@router.post("/{name}/labels/{label}:predict")
async def predict_label(request: Request, repo: Repo, settings: AppSettings, name: str,
                        label: str) -> Response:
    return await _predict(request, repo, settings, name, None, label)
