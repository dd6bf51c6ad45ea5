"""The pictures-from-elsewhere set bench/ood.py reads: kept in the repository, every
kind of change of every class present, and each change keeps a picture a picture."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest

from bench import elsewhere


def kinds(folder: str) -> Counter[tuple[int, str]]:
    return Counter((int(f.name.split("_")[0]), f.name.split("_")[1])
                   for f in (elsewhere.OUT / folder).glob("*.png"))


def test_the_set_holds_every_class_and_change() -> None:
    digits, clothes, symbols = kinds("mnist"), kinds("fashion_mnist"), kinds("symbols")
    assert {label for label, _ in digits} == set(range(10)) == {c for c, _ in clothes}
    assert {how for _, how in digits} == {*elsewhere.PHOTOGRAPHIC, *elsewhere.STROKES, "font"}
    assert {how for _, how in clothes} == set(elsewhere.PHOTOGRAPHIC)
    assert set(symbols) == {(-1, "font")} and sum(symbols.values()) >= 50


@pytest.mark.parametrize("how", [*elsewhere.PHOTOGRAPHIC, *elsewhere.STROKES])
def test_a_change_keeps_dark_ink_on_light_paper(how: str) -> None:
    stroke = np.zeros((28, 28), np.uint8)
    cv2.line(stroke, (14, 4), (14, 24), 255, 3)  # an MNIST-style "1"
    changed = elsewhere.PHOTOGRAPHIC.get(how, elsewhere.STROKES.get(how))(  # type: ignore[misc]
        elsewhere.on_paper(stroke), np.random.default_rng(0))
    assert changed.dtype == np.uint8 and changed.ndim == 2
    assert np.median(changed) > 150 and changed.min() < 100  # paper, and ink on it
