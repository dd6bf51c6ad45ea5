"""Pictures as users send them (training.sent): what the OOD score is fitted on beside the
dataset itself, so they must be what the service makes of such an upload."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from service.images.preprocess import PreprocessSpec, preprocess
from training import sent


def digits(n: int) -> np.ndarray:
    """``n`` MNIST-like pictures ``[n,28,28,1]``: light strokes on black."""
    out = np.zeros((n, 28, 28, 1), np.uint8)
    for i in range(n):
        cv2.putText(out[i], str(i % 10), (6, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2)
    return out


@pytest.mark.parametrize(("dataset", "center"), [("mnist", True), ("fashion_mnist", False)])
def test_a_picture_as_sent_is_what_the_service_makes_of_its_upload(dataset: str,
                                                                   center: bool) -> None:
    rng = np.random.default_rng(0)
    sheet = sent.paper(sent.enlarged(255 - digits(1)[0, ..., 0], rng), rng)
    png = cv2.imencode(".png", sheet)[1].tobytes()
    served = preprocess([png], PreprocessSpec(28, 28, "auto", center=center))[0]
    np.testing.assert_array_equal(sent.prepared(sheet, 28, 28, dataset), served.pixels[..., 0])


def test_copies_as_sent_are_other_pictures_of_the_same_size_and_repeat_with_the_seed() -> None:
    x = digits(30)
    a = sent.as_sent(x, "mnist", np.random.default_rng(1))
    b = sent.as_sent(x, "mnist", np.random.default_rng(1))
    assert a.shape == x.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    changed = np.abs(a.astype(int) - x.astype(int)).mean(axis=(1, 2, 3)) > 5
    assert changed.mean() > 0.8  # (a copy may come out near its original)
    assert (a.max(axis=(1, 2, 3)) > 100).mean() > 0.9  # ink survives the changes


def test_printed_digits_are_labelled_centred_pictures_of_ink() -> None:
    pictures, labels = sent.printed_digits(40, np.random.default_rng(2))
    assert pictures.shape == (40, 28, 28, 1) and labels.shape == (40,)
    assert set(labels.tolist()) <= set(range(10)) and len(set(labels.tolist())) > 5
    assert (pictures.max(axis=(1, 2, 3)) > 100).mean() > 0.9
    border = np.concatenate([pictures[:, :2], pictures[:, -2:]], axis=1)
    assert border.mean() < 10  # centred like MNIST's: the ink is inside the frame
