from __future__ import annotations

import numpy as np
import pytest

from service import inference
from service.config import Settings
from service.errors import ApiError
from service.imaging import decode, prepare
from service.model import ModelInfo, TensorInfo
from tests.helpers import fixture_images


def digit_model(channels: int = 1) -> ModelInfo:
    return ModelInfo(input=TensorInfo("image", "uint8", [-1, 28, 28, channels]),
                     output=TensorInfo("probabilities", "float32", [-1, 10]),
                     class_names=[str(i) for i in range(10)], dataset="mnist", metadata={})


def uploads(blobs: list[bytes], center: bool | None = None) -> inference.Uploads:
    return inference.uploads_for(blobs, digit_model(), Settings(), "auto", center)


def test_requests_prepared_together_each_get_their_own_pictures() -> None:
    digits = [data for _, data in fixture_images("digits")]
    requests = [uploads(digits[:1]), uploads(digits[1:4]), uploads(digits[4:], center=False)]
    requests += [uploads([d]) for d in digits]  # enough of one kind to go together
    made = inference.Uploads.make_many(requests)
    for req, images in zip(requests, made, strict=True):
        assert isinstance(images, np.ndarray) and images.shape == (len(req.blobs), 28, 28, 1)
        for blob, got, prep in zip(req.blobs, images, req.prepared, strict=True):
            alone = prepare(decode(blob, 10**6), 28, 28, center=req.center).pixels
            np.testing.assert_array_equal(got, alone)
            np.testing.assert_array_equal(prep.pixels, alone)


def test_a_bad_picture_fails_only_its_own_request() -> None:
    good = fixture_images("digits")[0][1]
    made = inference.Uploads.make_many([uploads([good]), uploads([good, b"not an image"]),
                                        uploads([good])])
    assert isinstance(made[0], np.ndarray) and isinstance(made[2], np.ndarray)
    assert isinstance(made[1], ApiError) and made[1].status_code == 415
    with pytest.raises(ApiError, match="not supported"):
        uploads([b"not an image"])()


def test_uploads_need_a_one_channel_model() -> None:
    with pytest.raises(ApiError, match="1-channel"):
        inference.uploads_for([b""], digit_model(channels=3), Settings(), "auto", None)
