"""training.trust.pictures: the named parts of the pictures fitted and measured on."""

from __future__ import annotations

import numpy as np

from training import trust


def test_the_calibrated_rows_are_the_stored_and_uploaded_parts_wherever_they_sit() -> None:
    def pictures(stored: int, uploaded: int, sent: int) -> trust.Pictures:
        parts = {trust.STORED: stored, trust.UPLOADED: uploaded, trust.SENT: sent}
        return trust.Pictures.of({name: (np.zeros((n, 2, 2, 1), np.uint8), np.zeros(n))
                                  for name, n in parts.items()})

    a, b = pictures(3, 2, 4), pictures(1, 0, 2)
    assert a.calibrated().tolist() == [0, 1, 2, 3, 4]
    assert trust.calibrated_rows(a, b).tolist() == [0, 1, 2, 3, 4, 9]
    pooled = (trust.Scored(a, np.zeros((9, 2)), np.zeros(9))
              + trust.Scored(b, np.zeros((3, 2)), np.zeros(3)))
    assert sorted(pooled.calibrated().tolist()) == [0, 1, 2, 3, 4, 9]
