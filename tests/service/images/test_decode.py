from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from service.api.errors import HTTP_STATUS
from service.errors import ServiceError
from service.images import decode as imaging
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
    with pytest.raises(ServiceError) as err:
        imaging.decode(png_header_claiming(100_000, 100_000), max_pixels=25_000_000)
    assert HTTP_STATUS[type(err.value)] == 413
    assert "100000x100000" in err.value.message


@pytest.mark.parametrize(("data", "status"), [
    (b"", 400),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415),
    (b"GIF89a" + b"\x00" * 20, 415),
    (b"random bytes, not an image", 415),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 10, 400),
])
def test_bad_uploads_get_clear_client_errors(data: bytes, status: int) -> None:
    with pytest.raises(ServiceError) as err:
        imaging.decode(data, max_pixels=10**6)
    assert HTTP_STATUS[type(err.value)] == status


def test_transparent_background_counts_as_white_paper() -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)  # fully transparent
    rgba[4:6, 4:6] = (0, 0, 0, 255)         # an opaque black stroke
    gray = imaging.decode(png(rgba), 10**6)
    assert gray[0, 0] == 255 and gray[5, 5] == 0


def test_sixteen_bit_png_is_scaled_to_eight_bits() -> None:
    img = np.full((3, 3), 65535, np.uint16)
    assert imaging.decode(png(img), 10**6).max() == 255


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tiff"])
def test_header_size_matches_the_decoded_size(ext: str) -> None:
    img = np.zeros((37, 53), np.uint8)  # not square: width and height must not swap
    data = cv2.imencode(ext, img)[1].tobytes()
    _, width, height = imaging.check_header(data, 10**6)
    assert (width, height) == (53, 37)
    assert imaging.decode(data, 10**6).shape == (37, 53)
