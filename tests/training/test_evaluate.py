"""Scores of an exported model: expected calibration error next to accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluate import ECE_BINS, expected_calibration_error, score


@pytest.mark.parametrize(("right", "expected"), [(8, 0.0), (10, 0.2), (5, 0.3)])
def test_ece_is_the_gap_between_confidence_and_accuracy(right: int, expected: float) -> None:
    # ten images predicted class 0 with confidence 0.8: right 8 times in 10 is calibrated
    probs = np.tile([0.8, 0.2], (10, 1))
    labels = np.array([0] * right + [1] * (10 - right))
    assert expected_calibration_error(probs, labels) == pytest.approx(expected)


def test_ece_weights_each_confidence_bin_by_its_share() -> None:
    # 5 at 0.95 all right (gap 0.05) and 5 at 0.55 all wrong (gap 0.55): (0.05 + 0.55) / 2
    probs = np.array([[0.95, 0.05]] * 5 + [[0.55, 0.45]] * 5)
    labels = np.array([0] * 5 + [1] * 5)
    assert ECE_BINS == 15
    assert expected_calibration_error(probs, labels) == pytest.approx(0.30)
    assert score(probs, labels, ["a", "b"]).to_json()["test_ece"] == pytest.approx(0.30)
