"""Inside the CNN over HTTP: summary, activations, learned filters, Grad-CAM, compare."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from service.api.deps import AppSettings, Plane, plane_of, settings_of, tag_request
from service.api.predict import top_k
from service.api.routing import hot_post
from service.api.schemas import (
    ERRORS,
    UPLOAD_BODY,
    CenterQ,
    ImageQuery,
    InvertQ,
    LabelQ,
    VersionQ,
    media,
)
from service.api.uploads import read_one
from service.dataplane import budgets
from service.dataplane.requests import ModelRef, Pictures
from service.errors import NotFound, Unprocessable
from service.images import render
from service.serving import inspection

router = APIRouter(prefix="/api", tags=["inspect"])

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def picture_route(path: str, *media_types: str) -> Callable[[Endpoint], Endpoint]:
    """A POST route that takes an uploaded picture and answers one of ``media_types``."""
    return router.post(path, responses={**ERRORS, **media(*media_types)},
                       openapi_extra=UPLOAD_BODY, response_class=Response)


ColormapQ = Annotated[render.Colormap, Query(description="gray, viridis, inferno, diverging")]


@router.get("/models/{name}/summary", responses=ERRORS)
async def summary(plane: Plane, name: str, version: VersionQ = None,
                  label: LabelQ = None) -> dict[str, Any]:
    """The layer table, parameters, dataset, classes, test results and training history;
    and what runs the predictions (``runtime``) with, when ``auto`` chose it on this CPU,
    both runtimes' times at load (``runtime_timings_ms``: one picture, one full call)."""
    sv = plane.resolve(ModelRef(name, version, label))
    meta = sv.info.metadata
    keys = ("arch", "arch_description", "total_params", "test_accuracy", "test_ece",
            "test_loss", "per_class_accuracy", "confusion_matrix", "history", "hyperparameters",
            "training_seconds", "epochs_run", "created", "versions", "source_commit")
    return {"model": sv.name, "version": sv.version, "dataset": sv.info.dataset,
            "class_names": sv.info.class_names, "input_shape": sv.info.input.shape[1:],
            "signatures": sorted(sv.signatures), "device": sv.device,
            "runtime": sv.runtime,
            "runtime_timings_ms": {runtime: {"one_picture": t.one_ms, "call": t.call_ms,
                                             "call_images": t.call_images}
                                   for runtime, t in sv.timings.items()},
            "layers": inspection.layer_table(sv), **{k: meta.get(k) for k in keys}}


class ActivationsParams(ImageQuery):
    """The query parameters of the activations route."""

    layers: str | None = Field(default=None, max_length=2048,
                               description="names or indices, comma-separated")
    channels: str | None = Field(default=None, max_length=4096)
    format: str | None = Field(default=None, description="json, npy, npz or png")
    colormap: render.Colormap = Field(default="viridis",
                                      description="gray, viridis, inferno, diverging")
    normalize: render.Norm = Field(default="channel", description="per channel or per layer")


@hot_post(router, "/models/{name}/activations",
          responses={**ERRORS, **media("application/json", "application/x-npy",
                                       "application/x-npz", "image/png")},
          openapi_extra={**UPLOAD_BODY, "parameters": [
              {"name": "accept", "in": "header", "required": False, "schema": {"type": "string"},
               "description": "picks the format when format= is not given"}]})
async def activations(request: Request, name: str,
                      params: Annotated[ActivationsParams, Query()]) -> Response:
    """Every layer's output (or the chosen layers and channels) for one uploaded image."""
    plane, settings, p = plane_of(request), settings_of(request), params
    fmt = render.pick_format(p.format, request.headers.get("accept"),
                             ("json", "npy", "npz", "png"), "json")
    async with plane.lease(ModelRef(name, p.version, p.label)) as sv:
        tag_request(request, sv.name, sv.version)
        chosen = inspection.select_layers(sv, p.layers, settings.max_layers)
        if fmt in ("npy", "png") and len(chosen) != 1:
            raise Unprocessable(f"format {fmt} holds one layer; {len(chosen)} were chosen "
                                "(pick one with layers=, or use json/npz)")
        x = await plane.prepared_pixels(
            sv, Pictures([await read_one(request, settings)], p.invert, p.center))
        out = await plane.call_signature(sv, "activations", image=x)
    picked = {n: inspection.select_channels(out[n][0], p.channels, settings.max_channels, n)
              for n in chosen}
    if fmt == "npy":
        return Response(render.npy(picked[chosen[0]]), media_type=render.MEDIA["npy"])
    if fmt == "npz":
        return Response(render.npz(picked), media_type="application/x-npz")
    if fmt == "png":
        value = picked[chosen[0]]
        if value.ndim == 3 and value.shape[-1] > settings.max_channels:
            raise Unprocessable(f"layer {chosen[0]!r} has {value.shape[-1]} channels; a PNG "
                                f"grid holds at most {settings.max_channels}: pick channels=")
        if value.ndim not in (1, 3):
            raise Unprocessable(f"layer {chosen[0]!r} of shape {list(value.shape)} has no "
                                "picture; ask for json")
        return render.image_response(render.grid(value, p.colormap, p.normalize), "png")
    total = sum(v.size for v in picked.values())
    budgets.json_values(total, settings, "use format=npz")
    order = inspection.layer_names(sv)
    body = {
        "model": sv.name, "version": sv.version,
        "input_png": base64.b64encode(render.encode(render.viewable(x[0]), "png")).decode(),
        "layers": [{"name": n, "index": order.index(n), "shape": list(v.shape),
                    "data": v} for n, v in picked.items()],
    }
    return Response(await plane.encode(total, render.json_bytes, body),
                    media_type="application/json")


@router.get("/models/{name}/filters", response_class=Response,
            responses={**ERRORS, **media("application/json", "application/x-npy", "image/png")})
async def filters(
    plane: Plane, name: str, version: VersionQ = None, label: LabelQ = None,
    layer: Annotated[str | None, Query(max_length=64)] = None,
    in_channel: Annotated[int | None, Query(
        ge=0, description="input channel to draw (png; default: a colour picture's three "
                          "together, else the first)")] = None,
    format: Annotated[str | None, Query(description="json or png")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Learned conv kernels ``[kh,kw,in,out]``; PNG: min-max scaled to 0..1 per layer,
    one tile per filter (the tutorial's filter plot), in colour for kernels that read a
    colour picture."""
    fmt = render.pick_format(format, accept, ("json", "png", "npy"), "json")
    sv = plane.resolve(ModelRef(name, version, label))
    ks = plane.kernels(sv)
    order = [n for n in inspection.conv_layers(sv) if n in ks] or sorted(ks)
    if layer is not None and layer not in ks:
        raise NotFound(f"unknown conv layer {layer!r}; conv layers are {', '.join(order)}")
    if fmt == "json":
        chosen = [layer] if layer else order
        body = {"model": sv.name, "version": sv.version, "layers": [
            {"name": n, "shape": list(ks[n].shape), "data": ks[n]} for n in chosen]}
        return Response(await plane.encode(sum(ks[n].size for n in chosen), render.json_bytes,
                                           body), media_type="application/json")
    k = ks[layer or order[0]]
    if fmt == "npy":
        return Response(render.npy(k), media_type=render.MEDIA["npy"])
    if in_channel is not None and in_channel >= k.shape[2]:
        raise Unprocessable(f"in_channel {in_channel} out of range (0..{k.shape[2] - 1})")
    scaled = (k - k.min()) / max(float(k.max() - k.min()), 1e-12)
    if in_channel is None and k.shape[2] == 3:
        return render.image_response(render.colour_grid(scaled, tile_px=48), "png")
    return render.image_response(render.grid(scaled[:, :, in_channel or 0, :], "gray",
                                             "layer", tile_px=48), "png")


@picture_route("/models/{name}/filters/apply", "image/png", "application/x-npy")
async def apply_filters(
    request: Request, plane: Plane, settings: AppSettings, name: str,
    version: VersionQ = None, label: LabelQ = None,
    layer: Annotated[str | None, Query(max_length=64)] = None,
    colormap: ColormapQ = "gray",
    format: Annotated[str | None, Query(description="png or npy")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Run the first layer's learned kernels over your picture: one tile per filter."""
    fmt = render.pick_format(format, accept, ("png", "npy"), "png")
    sv = plane.resolve(ModelRef(name, version, label))
    ks = plane.kernels(sv)
    name_ = layer or inspection.conv_layers(sv)[0]
    if name_ not in ks:
        raise NotFound(f"unknown conv layer {name_!r}; conv layers are {', '.join(ks)}")
    k = ks[name_]
    if k.shape[2] != sv.info.channels:
        raise Unprocessable(f"layer {name_!r} reads {k.shape[2]} channels, not a picture "
                            f"({sv.info.channels}); only a first conv layer can be applied")
    maps = await plane.apply_kernels(await read_one(request, settings), k)
    if fmt == "npy":
        return Response(render.npy(maps), media_type=render.MEDIA["npy"])
    return render.image_response(render.grid(maps, colormap, "channel", tile_px=96), "png",
                                 {"X-Layer": name_, "X-Filters": str(k.shape[3])})


@picture_route("/models/{name}/gradcam", "application/json", "image/png")
async def gradcam(
    request: Request, plane: Plane, settings: AppSettings, name: str,
    version: VersionQ = None, label: LabelQ = None,
    class_index: Annotated[int | None, Query(ge=0, description="default: predicted")] = None,
    layer: Annotated[str | None, Query(max_length=64, description="default: last conv")] = None,
    alpha: Annotated[float, Query(ge=0, le=1)] = 0.45,
    format: Annotated[str | None, Query(description="json or png")] = None,
    invert: InvertQ = "auto", center: CenterQ = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Grad-CAM: where the model looked for a class (plus the input-gradient saliency)."""
    fmt = render.pick_format(format, accept, ("json", "png"), "json")
    async with plane.lease(ModelRef(name, version, label)) as sv:
        tag_request(request, sv.name, sv.version)
        convs = inspection.conv_layers(sv)
        target = layer or convs[-1]
        if target not in convs:
            raise NotFound(f"unknown conv layer {target!r}; conv layers are "
                           f"{', '.join(convs)}")
        k = len(sv.info.class_names)
        if class_index is not None and class_index >= k:
            raise Unprocessable(f"class_index {class_index} out of range (0..{k - 1})")
        x = await plane.prepared_pixels(
            sv, Pictures([await read_one(request, settings)], invert, center))
        out = await plane.call_signature(
            sv, "gradcam", image=x,
            class_index=np.array([-1 if class_index is None else class_index], np.int32))
    heat = out[f"gradcam/{target}"][0]
    chosen = int(out["class_index"][0])
    if fmt == "png":
        return render.image_response(inspection.overlay(x[0], heat, alpha), "png",
                                     {"X-Class-Index": str(chosen), "X-Layer": target})
    return JSONResponse({
        "model": sv.name, "version": sv.version, "layer": target, "class_index": chosen,
        "label": sv.info.class_names[chosen],
        "probability": float(out["probabilities"][0][chosen]),
        "heatmap": np.round(heat, 5).tolist(),
        "saliency": np.round(out["saliency"][0], 6).tolist(),
    })


@router.post("/compare", responses=ERRORS, openapi_extra=UPLOAD_BODY)
async def compare(
    request: Request, plane: Plane, settings: AppSettings,
    a: Annotated[str, Query(max_length=64, description="first model")],
    b: Annotated[str | None, Query(max_length=64, description="second model (default a)")
                 ] = None,
    a_version: Annotated[int | None, Query(ge=1)] = None,
    b_version: Annotated[int | None, Query(ge=1)] = None,
    invert: InvertQ = "auto", center: CenterQ = None,
) -> dict[str, Any]:
    """One image through two versions (or two models of the same input shape); each side
    preprocesses it with its own model's settings (a clothing model gets no digit
    centering)."""
    upload = await read_one(request, settings)
    pictures = Pictures([upload], invert, center)
    async with plane.lease(ModelRef(a, a_version)) as sa, \
            plane.lease(ModelRef(b or a, b_version)) as sb:
        if sa.info.input.shape != sb.info.input.shape:
            raise Unprocessable(f"inputs differ: {sa.info.input.shape} vs "
                                f"{sb.info.input.shape}")
        plane.check_inputs(sa, [pictures, pictures])  # decoded once for each side
        sides = []
        acts = []
        for sv in (sa, sb):
            x = await plane.prepared_pixels(sv, pictures)
            probs = (await plane.predict(sv, x))[sv.info.output.name][0].tolist()
            sides.append({"model": sv.name, "version": sv.version,
                          "top_k": top_k(probs, sv.info.class_names, 3),
                          "probabilities": probs})
            acts.append(await plane.call_signature(sv, "activations", image=x)
                        if "activations" in sv.signatures else {})
    shared = [n for n in acts[0] if n in acts[1] and acts[0][n].shape == acts[1][n].shape]
    return {"a": sides[0], "b": sides[1], "same_prediction":
            sides[0]["top_k"][0]["class_index"] == sides[1]["top_k"][0]["class_index"],
            "layers": [{"name": n, **inspection.distance(acts[0][n], acts[1][n])}
                       for n in sorted(shared)]}
