"""Kernel filtering and pooling of uploaded images (no model needed)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from service.api.deps import AppSettings, Plane
from service.api.schemas import ERRORS, UPLOAD_BODY, media
from service.api.uploads import read_one
from service.dataplane import budgets
from service.dataplane.plane import DataPlane
from service.errors import InvalidInput, Unprocessable, parse_json
from service.images import kernels, render
from service.images.operations import FilterOp, PoolSpec, parse_ops, run_filter

router = APIRouter(prefix="/api", tags=["kernels and pooling"])

Color = Literal["gray", "rgb"]
FORMATS = ("png", "jpeg", "webp", "json", "npy")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")


async def _one_image(request: Request, plane: DataPlane, color: Color) -> np.ndarray:
    return await plane.image(await read_one(request, plane.settings), color == "rgb")


def _size(img: np.ndarray) -> str:
    return f"{img.shape[1]}x{img.shape[0]}"


async def _answer(plane: DataPlane, values: np.ndarray, out: np.ndarray, fmt: str,
                  headers: dict[str, str]) -> Response:
    """Floats as JSON/.npy (before output handling; colour channels in RGB order), or the
    uint8 picture."""
    if values.ndim == 3 and values.shape[2] == 3:
        values = values[:, :, ::-1]  # OpenCV works in BGR; arrays are read as RGB
    if fmt == "npy":
        return Response(await plane.run(lambda: render.npy(values.astype(np.float32, copy=False))),
                        media_type=render.MEDIA["npy"], headers=headers)
    if fmt == "json":
        budgets.json_values(values.size, plane.settings, "ask for format=npy")
        body = {"shape": list(values.shape), "data": values,
                "input_size": headers["X-Input-Size"], "output_size": headers["X-Output-Size"]}
        if "X-Kernel" in headers:
            body["kernel"] = json.loads(headers["X-Kernel"])

        def encode() -> bytes:
            body["data"] = np.round(values, 4)
            return render.json_bytes(body)

        return Response(await plane.encode(values.size, encode),
                        media_type="application/json", headers=headers)
    return await plane.run(render.image_response, out, fmt, headers)


@router.get("/kernels")
async def list_kernels() -> dict[str, object]:
    """Named kernels with their values; box and gaussian take ``size`` (and ``sigma``)."""
    return {"kernels": kernels.catalogue(), "parametric": list(kernels.PARAMETRIC),
            "borders": ["valid", "zero", "replicate", "reflect", "reflect101", "wrap"],
            "modes": ["correlation", "convolution"], "outputs": ["clip", "abs", "normalize"]}


@router.post("/filter", responses={**ERRORS, **media(*IMAGE_TYPES, "application/json",
                                                   "application/x-npy")},
             openapi_extra=UPLOAD_BODY,
             response_class=Response)
async def filter_image(
    request: Request, plane: Plane, settings: AppSettings,
    kernel: Annotated[str | None, Query(max_length=64)] = None,
    matrix: Annotated[str | None, Query(max_length=4096,
                                        description="JSON matrix, e.g. [[0,1,0],[1,-4,1],[0,1,0]]")
                      ] = None,
    size: int = 3, sigma: float = 1.0, weight: float = 1.0, normalize: bool = False,
    mode: kernels.Mode = "correlation", border: kernels.Border = "reflect101",
    output: kernels.Output = "clip", color: Color = "gray",
    format: Annotated[str | None, Query(description="png, jpeg, webp, json or npy")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Filter an uploaded image with a named or custom kernel (OpenCV filter2D)."""
    fmt = render.pick_format(format, accept, FORMATS, "png")
    try:
        parsed = parse_json(matrix.encode(), "matrix") if matrix is not None else None
    except InvalidInput as exc:
        raise Unprocessable(f"{exc.message} (e.g. [[0,1,0],[1,-4,1],[0,1,0]])") from None
    spec = FilterOp(kernel=kernel, matrix=parsed, size=size, sigma=sigma, weight=weight,
                    normalize=normalize, mode=mode, border=border, output=output)
    img = await _one_image(request, plane, color)

    def work() -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        values, k = run_filter(img, spec, settings.max_kernel_size)
        return values, kernels.to_uint8(values, output), k

    values, out, k = await plane.run_operations(img, [spec], work)
    headers = {"X-Input-Size": _size(img), "X-Output-Size": _size(out),
               "X-Kernel": json.dumps(_applied(k), separators=(",", ":"))}
    return await _answer(plane, values, out, fmt, headers)


def _applied(kernel: np.ndarray | None) -> object:
    """What was applied, for the ``X-Kernel`` header: the kernel, or for
    ``sobel_magnitude`` (no single kernel) the two whose magnitude it is."""
    if kernel is None:
        return {"magnitude_of": [np.round(k, 6).tolist() for k in kernels.sobel_pair()]}
    return np.round(kernel, 6).tolist()


@router.post("/pool", responses={**ERRORS, **media(*IMAGE_TYPES, "application/json",
                                                 "application/x-npy")},
             openapi_extra=UPLOAD_BODY, response_class=Response)
async def pool_image(
    request: Request, plane: Plane, op: kernels.PoolOp = "max",
    size: Annotated[int, Query(ge=1, le=64)] = 2,
    stride: Annotated[int | None, Query(ge=1, le=64)] = None,
    color: Color = "gray", format: str | None = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Max (the tutorial's 2x2) or average pooling; partial windows at the edges are
    dropped, so a 7-pixel side gives 3 with size 2, stride 2."""
    fmt = render.pick_format(format, accept, FORMATS, "png")
    img = await _one_image(request, plane, color)

    def work() -> tuple[np.ndarray, np.ndarray]:
        values = kernels.pool(img, op, size, stride)
        return values, kernels.to_uint8(values, "clip")

    values, out = await plane.run_operations(
        img, [PoolSpec(kind=op, size=size, stride=stride)], work)
    headers = {"X-Input-Size": _size(img), "X-Output-Size": _size(out)}
    return await _answer(plane, values, out, fmt, headers)


@router.post("/pipeline", responses={**ERRORS, **media(*IMAGE_TYPES)}, openapi_extra=UPLOAD_BODY,
             response_class=Response)
async def pipeline(
    request: Request, plane: Plane, settings: AppSettings,
    ops: Annotated[str, Query(max_length=4096, description=(
        'JSON list, e.g. [{"op":"filter","kernel":"sobel_right"},{"op":"pool","size":2}]'))],
    color: Color = "gray",
    format: Annotated[str | None, Query(description="png, jpeg or webp")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Up to ``max_pipeline_ops`` operations (filter, pool, grayscale, resize) in order."""
    fmt = render.pick_format(format, accept, ("png", "jpeg", "webp"), "png")
    steps = parse_ops(ops, settings.max_pipeline_ops)
    img = await _one_image(request, plane, color)
    out = await plane.operate(img, steps)
    headers = {"X-Input-Size": _size(img), "X-Output-Size": _size(out),
               "X-Operations": str(len(steps))}
    return await plane.run(render.image_response, out, fmt, headers)
