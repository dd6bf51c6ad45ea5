"""Preprocessing: one path for one picture or many, the same pixels as OpenCV's own
MNIST normalisation picture by picture."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cnnlab import uploads
from cnnlab.centering import fit_longest_side
from cnnlab.uploads import Invert
from service.images import preprocess
from service.images.preprocess import PreprocessSpec

DIGIT = PreprocessSpec(28, 28, "auto", center=True)


def reference(gray: np.ndarray, invert: Invert, center: bool) -> np.ndarray:
    """One picture the plain OpenCV way: threshold, boundingRect, moments, one warp."""
    border = np.concatenate((gray[0], gray[-1], gray[:, 0], gray[:, -1]))
    flip = invert == "on" or (invert == "auto" and
                               np.count_nonzero(border > 127) > sum(gray.shape))
    if flip:  # dark ink on paper: inverted, and the paper's level taken away
        gray = 255 - gray
        paper = float(np.median(np.concatenate((gray[0], gray[-1], gray[:, 0], gray[:, -1]))))
        if paper > 0:
            lifted = gray.astype(np.float32) - paper
            gray = np.clip(lifted * (255.0 / max(float(lifted.max()), 1.0)), 0,
                           255).astype(np.uint8)
    if not center:
        return uploads.pad_to(gray, 28, 28)
    _, ink = cv2.threshold(gray, 0.1 * max(int(gray.max()), 1), 255, cv2.THRESH_BINARY)
    x, y, w, h = cv2.boundingRect(ink)
    if w == 0 or h == 0:
        return np.zeros((28, 28), np.uint8)
    digit = fit_longest_side(gray[y:y + h, x:x + w], 20)
    m = cv2.moments(digit, binaryImage=False)
    dh, dw = digit.shape
    top, left = (28 - dh) // 2, (28 - dw) // 2
    dx = 14 - (left + m["m10"] / m["m00"]) if m["m00"] else 0.0
    dy = 14 - (top + m["m01"] / m["m00"]) if m["m00"] else 0.0
    shift = np.array([[1, 0, left + dx], [0, 1, top + dy]], np.float32)
    return cv2.warpAffine(digit, shift, (28, 28), flags=cv2.INTER_LINEAR, borderValue=0)


def drawings(n: int, seed: int = 0) -> list[np.ndarray]:
    """Strokes of random width and brightness at random places, some on white paper,
    some empty, in a few sizes: what users send."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = [(28, 28), (28, 28), (40, 30), (9, 64)][i % 4]
        img = np.zeros((h, w), np.uint8)
        for _ in range(int(rng.integers(0, 4))):
            p, q = rng.integers(0, [w, h], 2), rng.integers(0, [w, h], 2)
            cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])),
                     int(rng.integers(1, 256)), int(rng.integers(1, 5)))
        if i % 2:
            img = cv2.GaussianBlur(img, (5, 5), 1.0)  # soft edges: every grey level
        out.append(255 - img if i % 3 == 0 else img)
    edge = np.zeros((28, 28), np.uint8)
    edge[10:14, 10:14], edge[2, 25] = 250, 25  # a faint speck right at the ink threshold
    return [*out, edge]


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("invert", ["auto", "on", "off"])
def test_every_picture_gets_opencvs_own_result(center: bool, invert: Invert) -> None:
    grays = drawings(120)
    prepared = preprocess.prepare(grays, PreprocessSpec(28, 28, invert, center))
    for gray, got in zip(grays, prepared, strict=True):
        np.testing.assert_array_equal(got.pixels[:, :, 0], reference(gray, invert, center))
        assert got.original_size == (gray.shape[1], gray.shape[0])


def test_one_picture_alone_gives_what_it_gives_in_a_batch() -> None:
    grays = drawings(9)
    together = preprocess.prepare(grays, DIGIT)
    for gray, got in zip(grays, together, strict=True):
        [alone] = preprocess.prepare([gray], DIGIT)
        np.testing.assert_array_equal(alone.pixels, got.pixels)
        assert alone.inverted == got.inverted


def test_dark_digit_on_white_paper_is_inverted_and_centred() -> None:
    paper = np.full((200, 300), 255, np.uint8)
    cv2.rectangle(paper, (20, 30), (60, 150), 0, -1)  # ink off to the upper left
    [prep] = preprocess.prepare([paper], DIGIT)
    assert prep.inverted and prep.pixels.shape == (28, 28, 1)
    img = prep.pixels[:, :, 0].astype(float)
    ys, _ = np.nonzero(img)
    assert ys.max() - ys.min() + 1 <= 21  # longest side fitted to the 20-pixel box
    cy, cx = (img * np.indices(img.shape)).sum(axis=(1, 2)) / img.sum()
    assert abs(cy - 14) < 1 and abs(cx - 14) < 1  # centre of mass in the middle


def test_invert_off_keeps_pixels() -> None:
    [prep] = preprocess.prepare([np.full((28, 28), 200, np.uint8)],
                                PreprocessSpec(28, 28, "off"))
    assert not prep.inverted and int(prep.pixels.max()) == 200


def test_light_background_is_judged_by_most_of_the_border() -> None:
    img = np.zeros((10, 10), np.uint8)
    light = img.copy()
    light[0, :] = light[-1, :] = light[:, 0] = 255  # 3 of 4 sides light
    assert uploads.light_backgrounds(np.stack([img, light])).tolist() == [False, True]


@pytest.mark.parametrize("n", [1, 2])
def test_preparing_leaves_the_callers_pictures_alone(n: int) -> None:
    papers = [np.full((28, 28), 255, np.uint8) for _ in range(n)]
    preprocess.prepare(papers, PreprocessSpec(28, 28, "on", center=True))
    assert all(int(paper.min()) == 255 for paper in papers)


def test_grey_paper_is_no_ink() -> None:
    """A digit photographed on grey paper (ink 60, paper 190) is prepared as the same
    digit on white paper (ink 0, paper 255) is."""
    white = np.full((84, 84), 255, np.uint8)
    cv2.line(white, (42, 15), (42, 70), 0, 7)
    cv2.line(white, (30, 25), (42, 15), 0, 7)
    grey = (60 + white.astype(np.float32) * (130 / 255)).astype(np.uint8)
    on_white, on_grey = preprocess.prepare([white, grey], DIGIT)
    assert on_grey.inverted
    assert np.abs(on_grey.pixels.astype(int) - on_white.pixels.astype(int)).max() <= 2


def test_pictures_not_inverted_keep_their_background() -> None:
    dark_grey = np.full((28, 28), 40, np.uint8)
    dark_grey[10:18, 12:16] = 220
    [prep] = preprocess.prepare([dark_grey], PreprocessSpec(28, 28, "auto"))
    assert not prep.inverted and int(prep.pixels.min()) == 40


def test_a_colour_model_sees_rgb_resized_whatever_the_aspect() -> None:
    """A 3-channel model (a folder's): the picture decoded in colour, as RGB, resized to
    the input (stretched, as its training pictures were), no inversion on a white
    background, no centering."""
    bgr = np.zeros((40, 80, 3), np.uint8)
    bgr[:, :40] = (255, 0, 0)     # blue left half
    bgr[:, 40:] = (255, 255, 255)  # white right half
    spec = PreprocessSpec(16, 16, "off", center=True, channels=3, stretch=True)
    [prep] = preprocess.preprocess([cv2.imencode(".png", bgr)[1].tobytes()], spec)
    assert prep.pixels.shape == (16, 16, 3) and not prep.inverted and not prep.centered
    assert prep.pixels[8, 2].tolist() == [0, 0, 255]      # RGB: blue is the last channel
    assert prep.pixels[8, 13].tolist() == [255, 255, 255]
    assert prep.original_size == (80, 40)


def test_a_grayscale_folder_model_is_stretched_not_padded() -> None:
    gray = np.full((20, 60), 200, np.uint8)
    stretched = preprocess.prepare([gray], PreprocessSpec(10, 10, "off", stretch=True))[0]
    padded = preprocess.prepare([gray], PreprocessSpec(10, 10, "off"))[0]
    assert stretched.pixels.min() == 200  # fills the frame
    assert padded.pixels.min() == 0       # fitted in, black above and below
