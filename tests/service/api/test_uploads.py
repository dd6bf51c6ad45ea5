"""Multipart bodies split into file uploads (service.uploads.parse_multipart)."""

from __future__ import annotations

import httpx
import pytest

from service.api.errors import HTTP_STATUS
from service.api.uploads import MAX_FORM_FIELDS, Upload, parse_multipart
from service.errors import ServiceError


def encode(files: list[tuple[str, tuple[str | None, bytes]]]) -> tuple[bytes, str]:
    """A body and its boundary as httpx (a real client) writes them."""
    req = httpx.Request("POST", "http://x/", files=[
        (field, (name, data, "image/png") if name is not None else (None, data))
        for field, (name, data) in files])
    ctype = req.headers["content-type"]
    return req.read(), ctype.split("boundary=", 1)[1]


def test_files_come_back_in_order_with_names_and_exact_bytes() -> None:
    payloads = [bytes([i]) * (i * 1000 + 1) + b"\r\n--not-a-boundary\r\n" for i in range(5)]
    body, boundary = encode([("file", (f"{i}.png", p)) for i, p in enumerate(payloads)])
    uploads = parse_multipart(body, boundary, max_files=5)
    assert [u.filename for u in uploads] == [f"{i}.png" for i in range(5)]
    assert [u.data for u in uploads] == payloads


def test_file_parts_are_read_and_an_empty_filename_is_still_a_file() -> None:
    body, boundary = encode([("file", ("d.png", b"x")), ("file", ("e.png", b"y"))])
    uploads = parse_multipart(body, boundary, max_files=5)
    assert [(u.filename, u.data) for u in uploads] == [("d.png", b"x"), ("e.png", b"y")]
    # what a browser sends for a file input left empty
    empty = (b'--b\r\nContent-Disposition: form-data; name="file"; filename=""\r\n'
             b"Content-Type: application/octet-stream\r\n\r\n\r\n--b--\r\n")
    assert parse_multipart(empty, "b", max_files=5) == [Upload("", b"")]


@pytest.mark.parametrize(("files", "max_files", "status", "needle"), [
    ([("file", ("a.png", b"x"))] * 4, 3, 413, "Too many files"),
    ([("file", (None, b"x"))] * (MAX_FORM_FIELDS + 1), 3, 413, "Too many fields"),
    ([("file", (None, b"x"))], 3, 400, "no file parts"),
    # a part under another name would be ignored: it is refused, naming it
    ([("image", ("d.png", b"x"))], 3, 400, "part 'image' is a file"),
    ([("file", ("d.png", b"x")), ("top_k", (None, b"3"))], 3, 400,
     "field 'top_k' is not read"),
])
def test_limits_and_missing_files(files: list[tuple[str, tuple[str | None, bytes]]],
                                  max_files: int, status: int, needle: str) -> None:
    body, boundary = encode(files)
    with pytest.raises(ServiceError) as err:
        parse_multipart(body, boundary, max_files)
    assert HTTP_STATUS[type(err.value)] == status and needle in err.value.message


@pytest.mark.parametrize("cut", [0, 20, -10, -3])
def test_truncated_or_foreign_bodies_are_400(cut: int) -> None:
    body, boundary = encode([("file", ("a.png", b"x" * 50))])
    with pytest.raises(ServiceError) as err:
        parse_multipart(body[:cut], boundary, 3)
    assert HTTP_STATUS[type(err.value)] == 400 and "bad multipart body" in err.value.message
    with pytest.raises(ServiceError) as err:
        parse_multipart(body, "some-other-boundary", 3)
    assert HTTP_STATUS[type(err.value)] == 400
