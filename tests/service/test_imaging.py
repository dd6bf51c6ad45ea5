from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from service import imaging
from service.errors import ApiError
from tests.helpers import png


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims a huge size (a decompression bomb's calling card)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = zlib.compress(b"\x00" * 64)
    chunk2 = b"IDAT" + idat
    body += struct.pack(">I", len(idat)) + chunk2 + struct.pack(">I", zlib.crc32(chunk2))
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.mark.parametrize(("ext", "fmt"), [(".png", "png"), (".jpg", "jpeg"), (".bmp", "bmp"),
                                          (".webp", "webp"), (".tiff", "tiff")])
def test_formats_are_recognised_by_magic_bytes(ext: str, fmt: str) -> None:
    ok, buf = cv2.imencode(ext, np.zeros((4, 4), np.uint8))
    assert ok and imaging.sniff_format(buf.tobytes()) == fmt


def test_bomb_is_refused_from_the_header() -> None:
    with pytest.raises(ApiError) as err:
        imaging.decode(png_header_claiming(100_000, 100_000), max_pixels=25_000_000)
    assert err.value.status_code == 413
    assert "100000x100000" in err.value.message


@pytest.mark.parametrize(("data", "status"), [
    (b"", 400),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415),
    (b"GIF89a" + b"\x00" * 20, 415),
    (b"random bytes, not an image", 415),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 10, 400),
])
def test_bad_uploads_get_clear_client_errors(data: bytes, status: int) -> None:
    with pytest.raises(ApiError) as err:
        imaging.decode(data, max_pixels=10**6)
    assert err.value.status_code == status


def test_transparent_background_counts_as_white_paper() -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)  # fully transparent
    rgba[4:6, 4:6] = (0, 0, 0, 255)         # an opaque black stroke
    gray = imaging.decode(png(rgba), 10**6)
    assert gray[0, 0] == 255 and gray[5, 5] == 0


def test_sixteen_bit_png_is_scaled_to_eight_bits() -> None:
    img = np.full((3, 3), 65535, np.uint16)
    assert imaging.decode(png(img), 10**6).max() == 255


def test_dark_digit_on_white_paper_is_inverted_and_centred() -> None:
    paper = np.full((200, 300), 255, np.uint8)
    cv2.rectangle(paper, (20, 30), (60, 150), 0, -1)  # ink off to the upper left
    prep = imaging.prepare(paper, 28, 28, invert="auto", center=True)
    assert prep.inverted and prep.pixels.shape == (28, 28, 1)
    img = prep.pixels[:, :, 0].astype(float)
    ys, _ = np.nonzero(img)
    assert ys.max() - ys.min() + 1 <= 21  # longest side fitted to the 20-pixel box
    cy, cx = (img * np.indices(img.shape)).sum(axis=(1, 2)) / img.sum()
    assert abs(cy - 14) < 1 and abs(cx - 14) < 1  # centre of mass in the middle


def test_invert_off_keeps_pixels() -> None:
    img = np.full((28, 28), 200, np.uint8)
    prep = imaging.prepare(img, 28, 28, invert="off")
    assert not prep.inverted and int(prep.pixels.max()) == 200


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tiff"])
def test_header_size_matches_the_decoded_size(ext: str) -> None:
    img = np.zeros((37, 53), np.uint8)  # not square: width and height must not swap
    data = cv2.imencode(ext, img)[1].tobytes()
    _, width, height = imaging.check_header(data, 10**6)
    assert (width, height) == (53, 37)
    assert imaging.decode(data, 10**6).shape == (37, 53)


def test_light_background_is_judged_by_most_of_the_border() -> None:
    img = np.zeros((10, 10), np.uint8)
    assert imaging._light_background(img) is False
    img[0, :] = img[-1, :] = img[:, 0] = 255  # 3 of 4 sides light
    assert imaging._light_background(img) is True


def _drawings(n: int, seed: int = 0) -> list[np.ndarray]:
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
def test_preparing_together_gives_each_picture_exactly_its_own_result(
        center: bool, invert: imaging.Invert) -> None:
    grays = _drawings(120)
    together = imaging.prepare_batch(grays, 28, 28, invert=invert, center=center)
    for gray, got in zip(grays, together, strict=True):
        alone = imaging.prepare(gray, 28, 28, invert=invert, center=center)
        assert (got.inverted, got.centered, got.original_size) == (
            alone.inverted, alone.centered, alone.original_size)
        np.testing.assert_array_equal(got.pixels, alone.pixels)


def test_preparing_together_leaves_the_callers_pictures_alone() -> None:
    paper = np.full((28, 28), 255, np.uint8)
    imaging.prepare_batch([paper, paper.copy()], 28, 28, invert="on", center=True)
    assert int(paper.min()) == 255
