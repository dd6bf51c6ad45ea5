"""service.dataplane.results: a classified request's pictures as capture keeps them, and
the prediction ids."""

from __future__ import annotations

import numpy as np

from service.dataplane.results import Classified, new_prediction_id, served
from service.images.preprocess import Prepared


def prepared(value: int) -> Prepared:
    return Prepared(np.full((28, 28, 1), value, np.uint8), False, True, (40, 30))


def test_each_picture_is_kept_with_its_own_answer_under_the_prediction_id() -> None:
    result = Classified("mnist", 7, [str(k) for k in range(3)], [prepared(1), prepared(2)],
                        np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]], np.float32),
                        np.array([0.5, 9.0], np.float32), np.array([True, False]))
    rows = served(result, [b"first", b"second"])
    assert [(r.row.position, r.row.predicted, r.row.original) for r in rows] == [
        (0, 1, b"first"), (1, 0, b"second")]
    assert [r.row.confidence for r in rows] == [np.float32(0.7), np.float32(0.6)]
    assert [(r.row.ood_score, r.row.in_distribution) for r in rows] == [(0.5, True),
                                                                       (9.0, False)]
    assert {r.row.prediction_id for r in rows} == {result.prediction_id}
    assert [int(r.seen[0, 0, 0]) for r in rows] == [1, 2]  # the picture the model saw
    assert all(r.row.model == "mnist" and r.row.version == 7 for r in rows)


def test_a_version_without_scores_keeps_none_and_ids_differ() -> None:
    result = Classified("tiny", 1, ["a", "b"], [prepared(0)],
                        np.array([[0.4, 0.6]], np.float32))
    [row] = served(result, [b"x"])
    assert row.row.ood_score is None and row.row.in_distribution is None
    ids = {new_prediction_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 32 for i in ids)
