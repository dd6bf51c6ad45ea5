"""training.trust.features: what the OOD score reads of a picture."""

from __future__ import annotations

import numpy as np
import pytest

from training import trust


def test_the_picture_layer_is_its_block_means() -> None:
    images = np.zeros((2, 28, 28, 1), np.uint8)
    images[0, :4, :4] = 255         # the top-left block, all white
    images[1, 24:, 26:] = 102       # half of the bottom-right block at 0.4
    blocks = np.asarray(trust.picture_blocks(images))
    assert blocks.shape == (2, 49)
    assert blocks[0, 0] == 1.0 and blocks[0, 1:].sum() == 0
    assert blocks[1, 48] == pytest.approx(0.2) and blocks[1, :48].sum() == 0


def test_only_clothing_models_read_the_picture() -> None:
    assert trust.reads_picture("fashion_mnist") and not trust.reads_picture("mnist")
