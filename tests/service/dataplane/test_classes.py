"""Class names with scores: TF Serving's ranking and Triton's ``score:index:label``."""

from __future__ import annotations

import numpy as np
import pytest

from service.dataplane.classes import ranked, top_classes
from service.errors import InvalidInput

NAMES = ["zero", "one", "two"]


def test_ranked_lists_every_class_best_first() -> None:
    assert ranked([0.2, 0.5, 0.3], NAMES) == [("one", 0.5), ("two", 0.3), ("zero", 0.2)]
    assert [label for label, _ in ranked([0.1, 0.9], [])] == ["1", "0"]  # no names: indices


def test_top_classes_are_triton_strings_clamped_to_the_classes() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]], np.float32)
    out = top_classes(scores, 2, NAMES, "output 'p'")
    assert out.shape == (2, 2) and out.dtype == object
    assert [[c.decode().split(":")[1:] for c in row] for row in out] == [
        [["1", "one"], ["2", "two"]], [["0", "zero"], ["1", "one"]]]
    assert float(out[0, 0].split(b":")[0]) == pytest.approx(0.7)
    assert top_classes(scores, 99, NAMES, "p").shape == (2, 3)


@pytest.mark.parametrize(("scores", "count", "needle"), [
    (np.zeros((2, 3)), 0, "at least 1"),
    (np.zeros((2, 3, 1)), 1, "[batch, classes]"),
])
def test_bad_classification_requests_are_refused(scores: np.ndarray, count: int,
                                                 needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle.replace("[", r"\[")):
        top_classes(scores, count, NAMES, "p")
