"""TF Serving's Classify input: a list of ``tf.Example``-like feature maps, one per picture,
as the dataplane's batch parts.

Each example carries the model's input under its name: an encoded picture (bytes, read as
uploads are) or the flat pixel values (``H x W x C`` numbers). Runs of each kind become
one part; pixel values are declared with their shape, so their count is checked before
any array is made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from service.dataplane.requests import Input, Pictures, Tensor
from service.errors import InvalidInput

Feature = bytes | Sequence[float]


def example_inputs(examples: Sequence[Mapping[str, Feature]], context: Mapping[str, Feature],
                   input_name: str, shape: Sequence[int]) -> list[Input]:
    """The batch parts of ``examples`` (``context`` features apply to each, as TF Serving's
    ``ExampleListWithContext``); ``shape`` is the model's ``[N, H, W, C]``."""
    if not examples:
        raise InvalidInput("no examples: send one per picture")
    parts: list[Input] = []
    pixels: list[float] = []
    rows = 0
    blobs: list[bytes] = []
    per_row = shape[1] * shape[2] * shape[3]
    for i, example in enumerate(examples):
        unknown = sorted(set(example) - {input_name})
        if unknown:
            raise InvalidInput(f"examples[{i}]: unknown feature(s) {unknown}; this model "
                               f"reads {input_name!r}")
        value = example.get(input_name, context.get(input_name))
        if value is None:
            raise InvalidInput(f"examples[{i}]: no feature {input_name!r} (an encoded "
                               f"picture, or its {per_row} pixel values)")
        if isinstance(value, bytes):
            if rows:
                parts.append(Tensor(input_name, "float64", (rows, *shape[1:]), pixels))
                pixels, rows = [], 0
            blobs.append(value)
        else:
            if len(value) != per_row:
                raise InvalidInput(f"examples[{i}]: {len(value)} pixel values; the model "
                                   f"takes {per_row} ({shape[1]}x{shape[2]}x{shape[3]})")
            if blobs:
                parts.append(Pictures(blobs))
                blobs = []
            pixels.extend(value)
            rows += 1
    parts.append(Tensor(input_name, "float64", (rows, *shape[1:]), pixels) if rows
                 else Pictures(blobs))
    return parts
