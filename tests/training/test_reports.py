"""The training reports: curves whose axes make sense for any number of epochs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from training import reports


@pytest.mark.parametrize("epochs", [1, 3, 40])
def test_curves_count_whole_epochs(tmp_path: Path, epochs: int,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[Any] = []
    monkeypatch.setattr(reports, "_save", lambda fig, path: drawn.append(fig) or path)
    history = {k: [0.5] * epochs for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
    reports.training_curves(history, tmp_path / "curves.png")
    for ax in drawn[0].axes:
        assert ax.get_xlim() == (0.5, epochs + 0.5)
        ticks = [t for t in ax.get_xticks() if 0.5 <= t <= epochs + 0.5]
        assert all(float(t).is_integer() for t in ticks) and 1 <= len(ticks) <= 21
