"""Face 2: TensorFlow Serving's REST API (status, metadata, :predict), same JSON in and out.

``{"b64": "..."}`` values are taken as encoded image files (PNG/JPEG/...) and go through
the same preprocessing as uploads; plain nested lists are pixel values 0..255.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.deps import PREDICTION_ID, Plane, plane_of, tag_request
from service.api.routing import NoQuery, hot_post
from service.dataplane.classes import ranked
from service.dataplane.examples import Feature
from service.dataplane.plane import DataPlane
from service.dataplane.requests import (
    PREDICT_SIGNATURE,
    InferRequest,
    Input,
    ModelRef,
    Pictures,
    Tensor,
)
from service.dataplane.results import EXPLAIN_METHODS, GRAD_CAM, IG_STEPS, Explanation
from service.errors import InvalidInput, Unprocessable
from service.images import render
from service.serving import inspection
from service.serving.version import ServedVersion, signature_io

router = APIRouter(prefix="/v1/models", tags=["TensorFlow Serving REST"])

_DT = {"uint8": "DT_UINT8", "float32": "DT_FLOAT", "int32": "DT_INT32", "int64": "DT_INT64",
       "float64": "DT_DOUBLE", "bool": "DT_BOOL"}


def _status(plane: DataPlane, name: str, version: str | None,
            label: str | None) -> dict[str, Any]:
    return {"model_version_status": [
        {"version": str(r.version), "state": r.state,
         "status": {"error_code": "UNKNOWN" if r.error else "OK", "error_message": r.error}}
        for r in plane.status(name, version, label)]}


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


def _no_verb(segment: str) -> None:
    """``GET /v1/models/mnist:predict`` would otherwise read as the status of a model
    named 'mnist:predict'."""
    if ":" in segment:
        verb = segment.rsplit(":", 1)[1]
        raise StarletteHTTPException(405, f"':{verb}' is called with POST and a JSON body; "
                                          "GET reads a model's status", {"Allow": "POST"})


@router.get("/{name}")
async def model_status(plane: Plane, name: str) -> dict[str, Any]:
    _no_verb(name)
    return _status(plane, name, None, None)


@router.get("/{name}/versions/{version}")
async def version_status(plane: Plane, name: str, version: str) -> dict[str, Any]:
    _no_verb(version)
    return _status(plane, name, version, None)


@router.get("/{name}/labels/{label}")
async def label_status(plane: Plane, name: str, label: str) -> dict[str, Any]:
    _no_verb(label)
    return _status(plane, name, None, label)


@router.get("/{name}/metadata")
async def model_metadata(plane: Plane, name: str) -> dict[str, Any]:
    return _metadata(plane.resolve(ModelRef(name)))


@router.get("/{name}/versions/{version}/metadata")
async def version_metadata(plane: Plane, name: str, version: str) -> dict[str, Any]:
    return _metadata(plane.resolve(ModelRef(name, version)))


@router.get("/{name}/labels/{label}/metadata")
async def label_metadata(plane: Plane, name: str, label: str) -> dict[str, Any]:
    return _metadata(plane.resolve(ModelRef(name, label=label)))


# ------------------------------------------------------------------ verbs
Verb = Callable[[Request, ModelRef], Awaitable[Response]]


def verb(verb_name: str, run: Verb, doc: str) -> None:
    """Declare ``:verb_name`` on the newest version (a hot route), on a version and on a
    label, as TF Serving's URLs have it; each runs ``run`` with the version it names."""

    async def newest(request: Request, name: str,
                     params: Annotated[NoQuery, Query()]) -> Response:
        return await run(request, ModelRef(name))

    async def by_version(request: Request, name: str, version: str) -> Response:
        return await run(request, ModelRef(name, version))

    async def by_label(request: Request, name: str, label: str) -> Response:
        return await run(request, ModelRef(name, label=label))

    hot_post(router, f"/{{name}}:{verb_name}", name=verb_name, description=doc)(newest)
    router.add_api_route(f"/{{name}}/versions/{{version}}:{verb_name}", by_version,
                         methods=["POST"], name=f"{verb_name}_version", description=doc)
    router.add_api_route(f"/{{name}}/labels/{{label}}:{verb_name}", by_label,
                         methods=["POST"], name=f"{verb_name}_label", description=doc)


# ------------------------------------------------------------------ :predict
def _b64_bytes(value: dict[str, Any], where: str) -> bytes:
    try:
        return base64.b64decode(str(value["b64"]), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{where}: 'b64' is not valid base64") from None


def _instances(values: list[Any], input_name: str) -> list[Input]:
    """Rows of pixel values or encoded pictures (``{"b64": ...}``), in any mix, as
    consecutive parts of one batch."""
    parts: list[Input] = []
    rows: list[Any] = []
    blobs: list[bytes] = []
    for i, v in enumerate(values):
        where = f"instances[{i}]"
        if isinstance(v, dict) and "b64" not in v:
            if set(v) != {input_name}:
                raise InvalidInput(f"{where}: named inputs must be exactly {{{input_name!r}}}, "
                                   f"got {sorted(v)}")
            v = v[input_name]
        if isinstance(v, dict):
            if rows:
                parts.append(Tensor(input_name, "float64", None, rows))
                rows = []
            blobs.append(_b64_bytes(v, where))
        else:
            if blobs:
                parts.append(Pictures(blobs))
                blobs = []
            rows.append(v)
    parts.extend([Tensor(input_name, "float64", None, rows)] if rows else [Pictures(blobs)])
    return parts


def _request(body: object, ref: ModelRef, input_name: str) -> InferRequest:
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object with 'instances' or 'inputs'")
    if ("instances" in body) == ("inputs" in body):
        raise InvalidInput("send exactly one of 'instances' (row format) or 'inputs' "
                           "(columnar format)")
    signature = body.get("signature_name") or PREDICT_SIGNATURE
    if not isinstance(signature, str):
        raise InvalidInput("'signature_name' must be a string")
    wanted = body.get("output_filter") or []
    if not isinstance(wanted, list) or not all(isinstance(o, str) for o in wanted):
        raise InvalidInput("'output_filter' must be a list of output names")
    values = body.get("instances", body.get("inputs"))
    if isinstance(values, dict) and "b64" not in values:  # columnar, by input name
        if set(values) != {input_name}:
            raise InvalidInput(f"'inputs' must name exactly {{{input_name!r}}}, "
                               f"got {sorted(values)}")
        values = values[input_name]
    if isinstance(values, dict):  # a single b64 value
        values = [values]
    if not isinstance(values, list):
        raise InvalidInput("'instances' must be a list, one entry per image")
    return InferRequest(ref, _instances(values, input_name) if values else [], signature,
                        tuple(wanted), json_answer=True)


async def _predict(request: Request, ref: ModelRef) -> Response:
    plane = plane_of(request)
    input_name = plane.resolve(ref).info.input.name
    body = await plane.parse(await request.body(), "request body")
    result = await plane.infer(_request(body, ref, input_name))
    tag_request(request, result.model, result.version)
    rows = isinstance(body, dict) and "instances" in body
    out = result.outputs
    if len(out) == 1:
        value = next(iter(out.values()))
        answer: object = {"predictions": value} if rows else {"outputs": value}
    elif rows:
        n = len(next(iter(out.values())))
        answer = {"predictions": [{k: v[i] for k, v in out.items()} for i in range(n)]}
    else:
        answer = {"outputs": out}
    size = sum(v.size for v in out.values())
    return Response(await plane.encode(size, render.json_bytes, answer),
                    media_type="application/json",
                    headers={PREDICTION_ID: result.prediction_id})


verb("predict", _predict, "Predict: ``instances`` (rows) or ``inputs`` (columns).")


# ------------------------------------------------------------------ :classify
def _features(value: object, where: str) -> dict[str, Feature]:
    """One JSON example (feature name -> ``{"b64": ...}`` or a list of numbers)."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be an object of features")
    out: dict[str, Feature] = {}
    for key, feature in value.items():
        if isinstance(feature, dict):
            out[key] = _b64_bytes(feature, f"{where}.{key}")
        elif isinstance(feature, list) and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in feature):
            out[key] = feature
        else:
            raise InvalidInput(f"{where}.{key}: a picture as {{\"b64\": ...}} or a flat "
                               "list of pixel values")
    return out


async def _classify(request: Request, ref: ModelRef) -> Response:
    plane = plane_of(request)
    plane.resolve(ref)  # an unknown model or version is told before the body is read
    body = await plane.parse(await request.body(), "request body")
    if not isinstance(body, dict) or not isinstance(body.get("examples"), list):
        raise InvalidInput("request body must be a JSON object with 'examples': a list, one "
                           "object of features per picture")
    examples = [_features(e, f"examples[{i}]") for i, e in enumerate(body["examples"])]
    context = _features(body.get("context", {}), "context")
    scored = await plane.scores(ref, examples, context)
    tag_request(request, scored.model, scored.version)
    answer = {"result": [ranked(p.tolist(), scored.class_names)
                         for p in scored.probabilities]}
    return Response(await plane.encode(scored.probabilities.size, render.json_bytes, answer),
                    media_type="application/json",
                    headers={PREDICTION_ID: scored.prediction_id})


verb("classify", _classify, "Class labels and scores, best first, for ``examples``: each "
     "``{\"image\": {\"b64\": ...}}`` (an encoded picture) or ``{\"image\": [H*W*C pixel "
     "values]}``.")


# ------------------------------------------------------------------ :explain
async def _explain(request: Request, ref: ModelRef) -> Response:
    """KServe's explain verb over TF Serving-style ``instances``: Grad-CAM and saliency for
    each image's predicted class, and integrated gradients when the body's ``method``
    asks; one image's overlay as PNG when asked by ``Accept: image/png``."""
    plane = plane_of(request)
    input_name = plane.resolve(ref).info.input.name
    fmt = render.pick_format(None, request.headers.get("accept"), ("json", "png"), "json")
    body = await plane.parse(await request.body(), "request body")
    parsed = _request(body, ref, input_name)
    if parsed.signature != PREDICT_SIGNATURE:
        raise InvalidInput("explanations are of the prediction (serving_default); "
                           "leave 'signature_name' out")
    method = body.get("method", GRAD_CAM) if isinstance(body, dict) else GRAD_CAM
    if not isinstance(method, str):
        raise InvalidInput(f"'method' must be one of {', '.join(EXPLAIN_METHODS)}")
    ex = await plane.explain(ref, parsed.inputs, method)
    tag_request(request, ex.model, ex.version)
    if fmt == "png":
        return _explanation_png(ex)
    answer = {"model": ex.model, "version": ex.version, "method": method, "layer": ex.layer,
              **({"steps": IG_STEPS, "baseline": "black"} if ex.attributions is not None
                 else {}),
              "explanations": [
                  {"class_index": int(k), "label": ex.class_names[int(k)],
                   "probability": float(ex.probability[i]),
                   "heatmap": np.round(ex.heatmap[i], 5),
                   "saliency": np.round(ex.saliency[i], 6),
                   **({"attributions": np.round(ex.attributions[i], 6)}
                      if ex.attributions is not None else {})}
                  for i, k in enumerate(ex.class_index)]}
    size = ex.heatmap.size + ex.saliency.size + (
        ex.attributions.size if ex.attributions is not None else 0)
    return Response(await plane.encode(size, render.json_bytes, answer),
                    media_type="application/json")


def _explanation_png(ex: Explanation) -> Response:
    """One image's explanation over it: the Grad-CAM heatmap, or the pixels that raise the
    class's probability (integrated gradients' positive part, scaled to its peak)."""
    if len(ex.images) != 1:
        raise Unprocessable(f"a PNG explains one image; {len(ex.images)} were sent "
                            "(ask for JSON)")
    if ex.attributions is None:
        heat = ex.heatmap[0]
    else:
        positive = np.maximum(ex.attributions[0], 0.0)
        heat = positive / max(float(positive.max()), 1e-12)
    png = inspection.overlay(ex.images[0], heat, 0.45)
    return render.image_response(png, "png", {"X-Class-Index": str(ex.class_index[0]),
                                              "X-Layer": ex.layer})


verb("explain", _explain, "Why the model predicts what it does (KServe's ``:explain``): "
     "Grad-CAM of the last conv layer and the input-gradient saliency per instance; "
     "``\"method\": \"integrated-gradients\"`` adds each pixel's attribution (32 steps "
     "from a black picture); ``Accept: image/png`` for one instance's overlay.")
