"""filter2D-based filtering and pooling against an independent NumPy reference: the
tutorial's explicit loop over pixels."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from service.api.errors import HTTP_STATUS
from service.errors import ServiceError
from service.images import kernels

# OpenCV border name -> numpy.pad mode (cv2 REFLECT = numpy symmetric, REFLECT_101 = reflect)
NP_PAD = {"zero": "constant", "replicate": "edge", "reflect": "symmetric",
          "reflect101": "reflect", "wrap": "wrap"}


def reference(img: np.ndarray, k: np.ndarray, border: str, mode: str) -> np.ndarray:
    """Correlation (or convolution) by looping over every output pixel."""
    if mode == "convolution":
        k = k[::-1, ::-1]
    kh, kw = k.shape
    mh, mw = kh // 2, kw // 2
    src = img.astype(np.float64)
    if border != "valid":
        src = np.pad(src, ((mh, mh), (mw, mw)), mode=NP_PAD[border])  # type: ignore[call-overload]
    oh, ow = src.shape[0] - 2 * mh, src.shape[1] - 2 * mw
    out = np.zeros((oh, ow))
    for y in range(oh):
        for x in range(ow):
            out[y, x] = (src[y:y + kh, x:x + kw] * k).sum()
    return out


RNG = np.random.default_rng(7)
IMAGE = RNG.integers(0, 256, (9, 11)).astype(np.uint8)
ASYMMETRIC = np.array([[1, 2, 0], [-1, 3, 5], [0, -2, 4]], np.float64)  # flip shows


@pytest.mark.parametrize("border", ["valid", "zero", "replicate", "reflect", "reflect101",
                                    "wrap"])
@pytest.mark.parametrize("mode", ["correlation", "convolution"])
def test_matches_the_pixel_loop_reference(border: kernels.Border, mode: kernels.Mode) -> None:
    k = kernels.prepare_kernel(ASYMMETRIC, mode=mode)
    got = kernels.filter_image(IMAGE, k, border)
    np.testing.assert_allclose(got, reference(IMAGE, ASYMMETRIC, border, mode), atol=1e-3)


@pytest.mark.parametrize("border", ["valid", "zero", "wrap"])
def test_wide_rectangular_kernel_matches_too(border: kernels.Border) -> None:
    k = RNG.normal(size=(3, 7))
    got = kernels.filter_image(IMAGE, k, border)
    np.testing.assert_allclose(got, reference(IMAGE, k, border, "correlation"), atol=1e-3)


def test_valid_shrinks_by_the_kernel_margin() -> None:
    assert kernels.filter_image(IMAGE, np.ones((5, 3)), "valid").shape == (5, 9)


def test_named_kernels_do_what_they_say() -> None:
    ramp = np.tile(np.arange(8, dtype=np.uint8) * 10, (8, 1))  # brighter to the right
    right = kernels.filter_image(ramp, kernels.NAMED["sobel_right"], "replicate")
    left = kernels.filter_image(ramp, kernels.NAMED["sobel_left"], "replicate")
    assert right[4, 4] == 80 and left[4, 4] == -80
    flat = np.full((5, 5), 9, np.uint8)
    assert np.all(kernels.filter_image(flat, kernels.NAMED["laplacian8"], "replicate") == 0)
    assert kernels.box(3).sum() == pytest.approx(1)
    assert kernels.gaussian(5, 1.0).sum() == pytest.approx(1)


def test_weight_and_normalize() -> None:
    k = np.ones((3, 3))
    assert np.allclose(kernels.prepare_kernel(k, normalize=True), 1 / 9)
    assert np.allclose(kernels.prepare_kernel(k, weight=0.5), 0.5)
    edge = kernels.NAMED["laplacian4"]  # sum 0: normalize must leave it alone
    assert np.array_equal(kernels.prepare_kernel(edge, normalize=True), edge)


def test_output_rules() -> None:
    v = np.array([-20.0, 100.4, 300.0])
    assert kernels.to_uint8(v, "clip").tolist() == [0, 100, 255]
    assert kernels.to_uint8(v, "abs").tolist() == [20, 100, 255]
    assert kernels.to_uint8(v, "normalize").tolist() == [0, 96, 255]  # 120.4/320*255


@pytest.mark.parametrize("output", ["clip", "abs", "normalize"])
def test_output_rules_work_a_strip_at_a_time(output: kernels.Output) -> None:
    """A big picture's bytes are the same as the rule applied to the whole at once, and
    what is allocated meanwhile is the answer and one strip, not a second float picture."""
    rng = np.random.default_rng(5)
    values = rng.uniform(-300, 600, (2048, 1024, 3)).astype(np.float32)  # 24 MiB
    lo, hi = float(values.min()), float(values.max())
    whole = {"clip": values, "abs": np.abs(values), "normalize": (values - lo) * (255 / (hi - lo))}
    want = np.rint(np.clip(whole[output], 0, 255)).astype(np.uint8)
    tracemalloc.start()
    try:
        got = kernels.to_uint8(values, output)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, want)
    strip = kernels.STRIP_VALUES * values.itemsize  # (two are alive as one is replaced)
    assert peak < got.nbytes + 2 * strip + 2**20


@pytest.mark.parametrize("matrix", [[[1, 2], [3, 4]], [[1, 2, 3]] * 2, [[float("nan")]],
                                    [[float("inf")]], np.ones((17, 17)).tolist(), [1, 2, 3],
                                    [["a"]], []])
def test_bad_custom_kernels_are_refused(matrix: object) -> None:
    with pytest.raises(ServiceError) as err:
        kernels.validate_matrix(matrix, 15)
    assert HTTP_STATUS[type(err.value)] == 422


def pool_reference(img: np.ndarray, size: int, stride: int, op: str) -> np.ndarray:
    oh, ow = (img.shape[0] - size) // stride + 1, (img.shape[1] - size) // stride + 1
    fn = np.max if op == "max" else np.mean
    return np.array([[fn(img[y * stride:y * stride + size, x * stride:x * stride + size])
                      for x in range(ow)] for y in range(oh)])


@pytest.mark.parametrize(("size", "stride"), [(2, 2), (3, 2), (2, 1), (3, 3)])
@pytest.mark.parametrize("op", ["max", "avg"])
def test_pooling_matches_the_loop(size: int, stride: int, op: kernels.PoolOp) -> None:
    got = kernels.pool(IMAGE, op, size, stride)
    np.testing.assert_allclose(got, pool_reference(IMAGE, size, stride, op), rtol=1e-6)


def test_pooling_drops_partial_windows_at_odd_edges() -> None:
    assert kernels.pool(IMAGE, "max", 2).shape == (4, 5)  # 9x11 -> 4x5
    color = RNG.integers(0, 256, (7, 7, 3)).astype(np.uint8)
    assert kernels.pool(color, "max", 2).shape == (3, 3, 3)
