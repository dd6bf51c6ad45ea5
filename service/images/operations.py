"""Image operations as validated specs (pydantic) and the code that runs them;
the filter/pool routes run one, the pipeline route up to ``max_pipeline_ops``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import cv2
import numpy as np
import orjson
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from service.errors import NotFound, Unprocessable
from service.images import kernels


class FilterOp(BaseModel):
    op: Literal["filter"] = "filter"
    kernel: str | None = Field(default=None, description="a named kernel (GET /api/kernels)")
    # Checked by kernels.validate_matrix (odd sizes, finite numbers, size limit), which
    # names the problem better than a type error would.
    matrix: Any = Field(default=None, description="a custom kernel: a matrix of numbers")
    size: int = Field(default=3, description="box/gaussian size (odd)")
    sigma: float = Field(default=1.0, description="gaussian sigma")
    weight: float = Field(default=1.0, ge=-kernels.MAX_KERNEL_VALUE,
                          le=kernels.MAX_KERNEL_VALUE, description="multiply the kernel by this")
    normalize: bool = Field(default=False, description="divide the kernel by its sum")
    mode: kernels.Mode = "correlation"
    border: kernels.Border = "reflect101"
    output: kernels.Output = "clip"


class PoolSpec(BaseModel):
    op: Literal["pool"] = "pool"
    kind: kernels.PoolOp = "max"
    size: int = Field(default=2, ge=1, le=64, description="the window's side")
    stride: int | None = Field(default=None, ge=1, le=64, description="default: size")


class GrayscaleOp(BaseModel):
    op: Literal["grayscale"] = "grayscale"


class ResizeOp(BaseModel):
    op: Literal["resize"] = "resize"
    width: int = Field(ge=1, le=4096)
    height: int = Field(ge=1, le=4096)


Operation = FilterOp | PoolSpec | GrayscaleOp | ResizeOp
_Tagged = Annotated[Operation, Field(discriminator="op")]
_OPS = TypeAdapter(list[_Tagged])


def parse_ops(text: str, max_ops: int) -> list[Operation]:
    try:
        ops = _OPS.validate_python(orjson.loads(text))
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        where = ".".join(str(p) for p in first["loc"]) if first else ""
        msg = f"{where}: {first['msg']}" if first else str(exc)
        raise Unprocessable(f"ops must be a JSON list of operations ({msg})") from None
    if not ops:
        raise Unprocessable("ops is empty: give at least one operation")
    if len(ops) > max_ops:
        raise Unprocessable(f"{len(ops)} operations; the limit is {max_ops}")
    return ops


def resolve_kernel(spec: FilterOp, max_size: int) -> np.ndarray | None:
    """The kernel to apply (None for sobel_magnitude, which combines two)."""
    if (spec.kernel is None) == (spec.matrix is None):
        raise Unprocessable("give exactly one of 'kernel' (a name) or 'matrix' (custom)")
    if spec.matrix is not None:
        k = kernels.validate_matrix(spec.matrix, max_size)
    elif spec.kernel == "box":
        k = kernels.box(spec.size)
    elif spec.kernel == "gaussian":
        k = kernels.gaussian(spec.size, spec.sigma)
    elif spec.kernel == "sobel_magnitude":
        return None
    elif spec.kernel in kernels.NAMED:
        k = kernels.NAMED[spec.kernel]
    else:
        names = ", ".join([*kernels.NAMED, *kernels.PARAMETRIC])
        raise NotFound(f"unknown kernel {spec.kernel!r}; choose one of {names}")
    return kernels.prepare_kernel(k, weight=spec.weight, normalize=spec.normalize,
                                  mode=spec.mode)


def run_filter(img: np.ndarray, spec: FilterOp, max_size: int
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Float result before output handling, and the kernel applied."""
    k = resolve_kernel(spec, max_size)
    if k is None:
        magnitude = kernels.sobel_magnitude(img, spec.border)
        if spec.weight != 1:
            magnitude *= spec.weight
        return magnitude, None
    return kernels.filter_image(img, k, spec.border), k


def apply(img: np.ndarray, op: Operation,
          max_kernel: int) -> np.ndarray:
    """One pipeline step on a uint8 image -> uint8 image."""
    if isinstance(op, FilterOp):
        values, _ = run_filter(img, op, max_kernel)
        return kernels.to_uint8(values, op.output)
    if isinstance(op, PoolSpec):
        return kernels.to_uint8(kernels.pool(img, op.kind, op.size, op.stride), "clip")
    if isinstance(op, GrayscaleOp):
        return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return cv2.resize(img, (op.width, op.height), interpolation=cv2.INTER_AREA)


def output_size(op: Operation, width: int, height: int, channels: int
                ) -> tuple[int, int, int, int]:
    """What one operation makes of a ``width x height x channels`` picture, without running
    it: the output's width, height and channels, and the window area each output value
    reads (what its cost scales with)."""
    if isinstance(op, FilterOp):
        return width, height, channels, _kernel_area(op)
    if isinstance(op, PoolSpec):
        stride = op.stride or op.size
        return (max(0, (width - op.size) // stride + 1), max(0, (height - op.size) // stride + 1),
                channels, op.size * op.size)
    if isinstance(op, GrayscaleOp):
        return width, height, 1, 1
    # a shrinking resize reads every input pixel once
    return op.width, op.height, channels, max(1, (width * height) // (op.width * op.height))


def _kernel_area(op: FilterOp) -> int:
    if op.matrix is not None:
        rows = op.matrix if isinstance(op.matrix, list) else []
        first = rows[0] if rows and isinstance(rows[0], list) else []
        return max(1, len(rows) * len(first))
    if op.kernel in ("box", "gaussian"):
        return max(1, op.size * op.size)
    if op.kernel == "sobel_magnitude":
        return 2 * 9  # two 3x3 kernels
    return 9  # the named kernels are 3x3
