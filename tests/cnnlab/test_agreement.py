"""Two runtimes' answers count as the same when their probabilities are within 1e-5 and
their OOD verdicts are identical."""

from __future__ import annotations

import numpy as np

from cnnlab.agreement import ATOL, disagreement, probability_gap


def answer(p: float, verdict: bool | None = True) -> dict[str, np.ndarray]:
    out = {"probabilities": np.array([[p, 1 - p], [0.5, 0.5]], np.float32)}
    if verdict is not None:
        out["in_distribution"] = np.array([verdict, True])
    return out


def test_answers_within_the_tolerance_agree() -> None:
    assert disagreement(answer(0.9), answer(0.9 + ATOL / 2)) is None
    assert probability_gap(answer(0.9), answer(0.9 + ATOL / 2)) <= ATOL


def test_probabilities_further_apart_disagree() -> None:
    why = disagreement(answer(0.9), answer(0.9 + 1e-3))
    assert why is not None and why.startswith("probabilities differ by 0.001")


def test_another_verdict_disagrees_only_where_there_are_verdicts() -> None:
    assert disagreement(answer(0.9, False), answer(0.9, True)) == "OOD verdicts differ"
    assert disagreement(answer(0.9, False), answer(0.9, None)) is None
