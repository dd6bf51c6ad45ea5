"""service.serving.inspection: integrated gradients' path and attributions."""

from __future__ import annotations

import numpy as np
import pytest

from service.serving import inspection


def test_the_path_runs_from_black_to_the_picture_at_midpoints() -> None:
    images = np.full((2, 2, 2, 1), 200, np.uint8)
    images[1] = 80
    path = inspection.scaled_path(images, 4)
    assert path.shape == (8, 2, 2, 1) and path.dtype == np.uint8
    # first image at 1/8, 3/8, 5/8, 7/8 of 200; then the second's
    assert path[:, 0, 0, 0].tolist() == [25, 75, 125, 175, 10, 30, 50, 70]


def test_attributions_add_up_to_the_change_of_the_score() -> None:
    """For f(x) = sum(w x^2) the gradient is 2 w x; integrated from black, each pixel's
    share is w x^2 and the shares add up to f(x) - f(0) (completeness)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 5, 5, 2), dtype=np.uint8)
    w = rng.normal(size=(5, 5, 2)).astype(np.float32)
    path = inspection.scaled_path(images, 32).astype(np.float32)
    attributions = inspection.integrated_gradients(images, 2 * w * path)
    exact = (w * images.astype(np.float32) ** 2).sum(axis=-1)
    assert attributions.shape == (3, 5, 5)
    np.testing.assert_allclose(attributions, exact, rtol=0.02, atol=2.0)
    assert attributions.sum() == pytest.approx(exact.sum(), rel=0.01)
