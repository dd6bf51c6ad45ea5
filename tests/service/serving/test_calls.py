"""How many images a model call holds, and a batch run as several calls."""

from __future__ import annotations

import numpy as np
import pytest

from service.serving.calls import CALL_VALUES, images_per_call, in_calls


@pytest.mark.parametrize(("shape", "images"), [
    ((28, 28, 1), 64), ((32, 32, 3), 16), ((96, 96, 3), 1), ((224, 224, 3), 1),
    (("height", "width", 1), CALL_VALUES)])
def test_a_call_holds_as_many_images_as_fit_its_input_values(shape: tuple[object, ...],
                                                             images: int) -> None:
    assert images_per_call(shape) == images


@pytest.mark.parametrize(("step", "calls"), [(4, [4, 4, 2]), (10, [10]), (None, [10])])
def test_a_batch_runs_in_calls_of_at_most_step_with_its_rows_in_order(
        step: int | None, calls: list[int]) -> None:
    sizes: list[int] = []

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        sizes.append(len(images))
        return {"double": 2 * images, "first": images[:, 0]}

    images = np.arange(30).reshape(10, 3)
    out = in_calls(run, images, step)
    assert sizes == calls
    np.testing.assert_array_equal(out["double"], 2 * images)
    np.testing.assert_array_equal(out["first"], images[:, 0])
