"""Every request's cost, checked before the work is done. Each refusal names the cost and
the limit (``TooLarge``); the limits are settings (``service.runtime.settings``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from service.errors import InvalidInput, TooLarge
from service.images.decode import check_header
from service.images.operations import Operation, output_size
from service.runtime.settings import Settings
from service.serving.version import TensorInfo


def batch_size(n: int, settings: Settings, what: str) -> None:
    """A batch holds 1..``max_instances`` images."""
    if n < 1:
        raise InvalidInput(f"{what}: the batch is empty (0 images)")
    if n > settings.max_instances:
        raise TooLarge(f"{what}: batch of {n} images; the limit is {settings.max_instances}")


def picture_sizes(blobs: Sequence[bytes], settings: Settings) -> list[tuple[int, int]]:
    """(width, height) of each encoded picture, read from its header alone; refused when
    one picture or all of them together have more pixels than the limits allow."""
    batch_size(len(blobs), settings, "pictures")
    sizes, total = [], 0
    for blob in blobs:
        _, width, height = check_header(blob, settings.max_image_pixels)
        sizes.append((width, height))
        total += width * height
    if total > settings.max_request_pixels:
        raise TooLarge(f"the request's pictures have {total} pixels together; the limit is "
                       f"{settings.max_request_pixels} per request")
    return sizes


def outputs(produced: dict[str, TensorInfo], n: int, settings: Settings, what: str) -> None:
    """A call's outputs for ``n`` images, from the signature's declared shapes, fit in
    ``max_output_values`` numbers."""
    per_image = sum(math.prod(max(d, 1) for d in t.shape[1:]) for t in produced.values())
    if n * per_image > settings.max_output_values:
        raise TooLarge(f"{what} gives {per_image} numbers per image, {n * per_image} for "
                       f"{n} images; the limit is {settings.max_output_values} per request")


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
