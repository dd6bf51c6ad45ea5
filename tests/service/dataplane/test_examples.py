"""TF Serving's Classify examples as batch parts: pictures and pixel rows, counted before
any array is made."""

from __future__ import annotations

import pytest

from service.dataplane.examples import example_inputs
from service.dataplane.requests import Pictures, Tensor
from service.errors import InvalidInput

SHAPE = [-1, 28, 28, 1]


def test_runs_of_each_kind_become_one_part() -> None:
    row = [0.0] * 784
    parts = example_inputs([{"image": b"png1"}, {"image": b"png2"}, {"image": row},
                            {"image": row}, {"image": b"png3"}], {}, "image", SHAPE)
    assert parts == [Pictures([b"png1", b"png2"]), Tensor("image", "float64", (2, 28, 28, 1),
                                                          row * 2), Pictures([b"png3"])]


def test_context_features_fill_in_for_every_example() -> None:
    parts = example_inputs([{}, {}], {"image": b"png"}, "image", SHAPE)
    assert parts == [Pictures([b"png", b"png"])]


@pytest.mark.parametrize(("examples", "needle"), [
    ([], "no examples"),
    ([{}], "no feature 'image'"),
    ([{"image": [0.0] * 783}], "783 pixel values"),
    ([{"image": b"png", "caption": b"x"}], "unknown feature"),
])
def test_bad_examples_are_refused(examples: list[dict[str, object]], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        example_inputs(examples, {}, "image", SHAPE)  # type: ignore[arg-type]
