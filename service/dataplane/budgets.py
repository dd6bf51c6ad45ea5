"""Every request's cost, checked before the work is done. Each refusal names the cost and
the limit (``TooLarge``); the limits are settings (``service.runtime.settings``).

A budget is per request: a request's parts (tensors, runs of pictures between pixel
rows, examples with their context) are added up before any of them is decoded.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.dataplane.requests import Input, Pictures
from service.errors import InvalidInput, TooLarge
from service.images.decode import check_header, scans
from service.images.operations import Operation, output_size
from service.runtime.settings import Settings
from service.serving.version import TensorInfo


def batch_size(n: int, settings: Settings, what: str) -> None:
    """A batch holds 1..``max_instances`` images."""
    if n < 1:
        raise InvalidInput(f"{what}: the batch is empty (0 images)")
    if n > settings.max_instances:
        raise TooLarge(f"{what}: batch of {n} images; the limit is {settings.max_instances}")


@dataclass(frozen=True)
class RequestCost:
    """What a request's parts hold, known before any is decoded."""

    images: int
    part_pixels: list[int]  # each part's decoded pixels (0 for a tensor)


def request_inputs(parts: Sequence[Input], want: TensorInfo,
                   settings: Settings) -> RequestCost:
    """All the parts of one request's batch together, before any is decoded: each tensor
    names the model's input and declares a shape that fits it, the images of every part
    fit ``max_instances``, and the pictures of every part fit the pixel and decode
    budgets (``picture_sizes``)."""
    images = request_images(parts, want, settings)
    blobs = [blob for part in parts if isinstance(part, Pictures) for blob in part.blobs]
    sizes = iter(picture_sizes(blobs, settings) if blobs else ())
    return RequestCost(images, [sum(w * h for w, h in itertools.islice(sizes, len(part.blobs)))
                                if isinstance(part, Pictures) else 0 for part in parts])


def request_images(parts: Sequence[Input], want: TensorInfo, settings: Settings) -> int:
    """How many images a request's parts hold together (1..``max_instances``), from what
    they declare; each part names the model's input and a tensor's shape fits it."""
    images = 0
    for part in parts:
        if part.name is not None and part.name != want.name:
            raise InvalidInput(f"unknown input {part.name!r}; this model takes one input, "
                               f"{want.name!r}")
        if isinstance(part, Pictures):
            images += len(part.blobs)
        elif part.shape is None:  # JSON rows: one image a row
            images += len(part.data)
        else:
            images += declared_shape(part.shape, want.shape, f"input {part.name!r}",
                                     settings)[0]
    batch_size(images, settings, "the request")
    return images


def declared_shape(shape: tuple[int, ...], model: list[int], what: str,
                   settings: Settings) -> tuple[int, ...]:
    """A declared shape that fits the model's ``[N,H,W,C]`` (``[N,H,W]`` for one channel),
    with 1..``max_instances`` images."""
    h, w, c = model[1:]
    fits = (len(shape) == 4 and tuple(shape[1:]) == (h, w, c)) or (
        len(shape) == 3 and c == 1 and tuple(shape[1:]) == (h, w))
    if not fits:
        raise InvalidInput(f"{what}: shape {list(shape)} does not match the model input "
                           f"[N,{h},{w},{c}]")
    batch_size(shape[0], settings, what)
    return shape


def picture_sizes(blobs: Sequence[bytes], settings: Settings) -> list[tuple[int, int]]:
    """(width, height) of each encoded picture, read from its header alone; refused when
    one picture or all of them together have more pixels than the limits allow, or when
    decoding them would take more passes over those pixels (a progressive JPEG's scans)
    than ``max_jpeg_scans`` at the full pixel budget."""
    batch_size(len(blobs), settings, "pictures")
    sizes, total, work = [], 0, 0
    work_limit = settings.max_request_pixels * settings.max_jpeg_scans
    for blob in blobs:
        fmt, width, height = check_header(blob, settings.max_image_pixels)
        sizes.append((width, height))
        total += width * height
        work += width * height * scans(blob, fmt)
        if total > settings.max_request_pixels:
            raise TooLarge(f"the request's pictures have {total} pixels together; the limit "
                           f"is {settings.max_request_pixels} per request")
        if work > work_limit:
            raise TooLarge(f"decoding the request's pictures takes {work} pixel-passes "
                           f"(pixels x JPEG scans); the limit is {work_limit} per request "
                           f"({settings.max_request_pixels} pixels x "
                           f"{settings.max_jpeg_scans} scans)")
    return sizes


def outputs(produced: dict[str, TensorInfo], n: int, settings: Settings, what: str) -> None:
    """A call's outputs for ``n`` images, from the signature's declared shapes, fit in
    ``max_output_values`` numbers."""
    per_image = values_per_image(produced)
    if n * per_image > settings.max_output_values:
        raise TooLarge(f"{what} gives {per_image} numbers per image, {n * per_image} for "
                       f"{n} images; the limit is {settings.max_output_values} per request")


def json_answer(returned: dict[str, TensorInfo], n: int, settings: Settings,
                hint: str) -> None:
    """The outputs a JSON face will write for ``n`` images fit in ``max_json_values``,
    known from the declared shapes before the model runs."""
    json_values(n * values_per_image(returned), settings, hint)


def values_per_image(produced: dict[str, TensorInfo]) -> int:
    return sum(math.prod(max(d, 1) for d in t.shape[1:]) for t in produced.values())


def operations(ops: Sequence[Operation], width: int, height: int, channels: int,
               settings: Settings) -> None:
    """Image operations cost their output pixels x channels x window (kernel or pool)
    area, summed over the operations; refused over ``max_operation_cost``."""
    cost = 0
    for op in ops:
        width, height, channels, area = output_size(op, width, height, channels)
        cost += width * height * channels * area
        if cost > settings.max_operation_cost:
            raise TooLarge(f"the operations cost {cost} pixel-window products (output pixels x "
                           f"channels x window area) so far; the limit is "
                           f"{settings.max_operation_cost}")


def json_values(count: int, settings: Settings, hint: str) -> None:
    """An answer of ``count`` numbers fits in JSON."""
    if count > settings.max_json_values:
        raise TooLarge(f"{count} values is too many for JSON (limit {settings.max_json_values});"
                       f" {hint}")
