from __future__ import annotations

import numpy as np
import pytest

from service.errors import ApiError
from service.images.decode import decode
from service.images.preprocess import PreprocessSpec, prepare
from service.runtime.settings import Settings
from service.serving import inference
from service.serving.version import ModelInfo, TensorInfo
from tests.helpers import fixture_images

pytestmark = pytest.mark.anyio


def model(channels: int = 1, dataset: str = "mnist") -> ModelInfo:
    return ModelInfo(input=TensorInfo("image", "uint8", [-1, 28, 28, channels]),
                     output=TensorInfo("probabilities", "float32", [-1, 10]),
                     class_names=[str(i) for i in range(10)], dataset=dataset, metadata={})


async def test_uploads_are_decoded_and_prepared_for_the_model() -> None:
    digits = [data for _, data in fixture_images("digits")]
    prepared = await inference.prepare_uploads(model(), digits, Settings())
    for blob, got in zip(digits, prepared, strict=True):
        [alone] = prepare([decode(blob, 10**6)], PreprocessSpec(28, 28, center=True))
        np.testing.assert_array_equal(got.pixels, alone.pixels)
        assert got.centered


@pytest.mark.parametrize(("dataset", "centered"), [("mnist", True), ("fashion_mnist", False)])
def test_digit_models_are_centred_by_default_and_clothing_is_not(dataset: str,
                                                                 centered: bool) -> None:
    spec = inference.preprocess_spec(model(dataset=dataset), Settings(), "auto", None)
    assert spec.center is centered
    assert inference.preprocess_spec(model(dataset=dataset), Settings(), "auto",
                                     not centered).center is not centered


async def test_a_bad_picture_is_a_client_error() -> None:
    good = fixture_images("digits")[0][1]
    with pytest.raises(ApiError, match="not supported") as err:
        await inference.prepare_uploads(model(), [good, b"not an image"], Settings())
    assert err.value.status_code == 415


def test_uploads_need_a_one_channel_model() -> None:
    with pytest.raises(ApiError, match="1-channel"):
        inference.preprocess_spec(model(channels=3), Settings(), "auto", None)


def test_top_k_ranks_the_classes() -> None:
    ranked = inference.top_k([0.1, 0.6, 0.3], ["a", "b", "c"], 2)
    assert ranked == [{"class_index": 1, "label": "b", "probability": 0.6},
                      {"class_index": 2, "label": "c", "probability": 0.3}]
