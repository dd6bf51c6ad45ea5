"""The dataplane's steps that need no loaded model: pictures prepared within budgets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from service.api.predict import top_k
from service.dataplane.plane import DataPlane
from service.dataplane.requests import Pictures
from service.errors import InvalidInput, TooLarge, UnsupportedMedia
from service.images.decode import decode
from service.images.preprocess import PreprocessSpec, prepare
from service.runtime.settings import Settings
from service.serving.version import ModelInfo, TensorInfo
from tests.helpers import fixture_images, png

pytestmark = pytest.mark.anyio


def version(channels: int = 1, dataset: str = "mnist") -> Any:
    probabilities = TensorInfo("probabilities", "float32", [-1, 10])
    info = ModelInfo(input=TensorInfo("image", "uint8", [-1, 28, 28, channels]),
                     output=probabilities, outputs={"probabilities": probabilities},
                     class_names=[str(i) for i in range(10)], dataset=dataset, metadata={})
    return SimpleNamespace(name="m", version=1, info=info)


def plane(**settings: Any) -> DataPlane:
    return DataPlane(SimpleNamespace(), Settings(**settings))  # type: ignore[arg-type]


async def test_uploads_are_decoded_and_prepared_for_the_model() -> None:
    digits = [data for _, data in fixture_images("digits")]
    prepared = await plane().prepare(version(), Pictures(digits))
    for blob, got in zip(digits, prepared, strict=True):
        [alone] = prepare([decode(blob, 10**6)], PreprocessSpec(28, 28, center=True))
        np.testing.assert_array_equal(got.pixels, alone.pixels)
        assert got.centered


@pytest.mark.parametrize(("dataset", "centered"), [("mnist", True), ("fashion_mnist", False)])
async def test_digit_models_are_centred_by_default_and_clothing_is_not(dataset: str,
                                                                       centered: bool) -> None:
    digit = fixture_images("digits")[0][1]
    [got] = await plane().prepare(version(dataset=dataset), Pictures([digit]))
    assert got.centered is centered
    [got] = await plane().prepare(version(dataset=dataset), Pictures([digit], center=not centered))
    assert got.centered is not centered


async def test_a_bad_picture_is_a_client_error() -> None:
    good = fixture_images("digits")[0][1]
    with pytest.raises(UnsupportedMedia, match="not supported"):
        await plane().prepare(version(), Pictures([good, b"not an image"]))


async def test_pictures_need_a_one_or_three_channel_model() -> None:
    with pytest.raises(InvalidInput, match="1- or 3-channel"):
        await plane().prepare(version(channels=4), Pictures([fixture_images("digits")[0][1]]))


async def test_a_colour_model_gets_the_picture_in_colour() -> None:
    """A 3-channel version without an ``upload`` entry (a SavedModel from elsewhere): RGB,
    fitted into its input, no digit centering however the dataset is named."""
    bgr = np.zeros((28, 28, 3), np.uint8)
    bgr[..., 2] = 200  # red, as OpenCV stores it
    [got] = await plane().prepare(version(channels=3, dataset="other"), Pictures([png(bgr)]))
    assert got.pixels.shape == (28, 28, 3) and not got.centered
    assert got.pixels[14, 14].tolist() == [200, 0, 0]


async def test_the_pixel_budget_is_per_request_not_per_picture() -> None:
    picture = png(np.zeros((100, 100), np.uint8))  # 10,000 pixels each
    p = plane(max_image_pixels=10_000, max_request_pixels=30_000)
    assert len(await p.prepare(version(), Pictures([picture] * 3))) == 3
    with pytest.raises(TooLarge, match="40000 pixels together; the limit is 30000"):
        await p.prepare(version(), Pictures([picture] * 4))


async def test_a_large_picture_is_kept_small_after_its_decode() -> None:
    big = np.full((3000, 1000), 255, np.uint8)
    big[1000:2000, 300:700] = 0  # a dark bar on white paper
    [got] = await plane().prepare(version(), Pictures([png(big)]))
    assert got.original_size == (1000, 3000) and got.inverted
    assert got.pixels.shape == (28, 28, 1) and got.pixels.max() == 255


def test_top_k_ranks_the_classes() -> None:
    ranked = top_k([0.1, 0.6, 0.3], ["a", "b", "c"], 2)
    assert ranked == [{"class_index": 1, "label": "b", "probability": 0.6},
                      {"class_index": 2, "label": "c", "probability": 0.3}]
