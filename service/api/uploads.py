"""Read image uploads from a request: multipart (one or many files) or a raw body.

The body is already bounded by the request-size cap (``service.api.middleware``), so it is
read whole and split by ``multipart``'s push parser, which keeps the parts in memory
(Starlette's form parser spools every file part to a temporary file object first).
"""

from __future__ import annotations

from dataclasses import dataclass

import multipart
from fastapi import Request

from service.errors import InvalidInput, TooLarge, Unprocessable, UnsupportedMedia
from service.runtime import tracing
from service.runtime.settings import Settings

MAX_FORM_FIELDS = 100  # non-file parts tolerated (and ignored) beside the files


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes


async def read_uploads(request: Request, settings: Settings) -> list[Upload]:
    """The pictures of a multipart or raw-image request body."""
    with tracing.stage("read body"):
        return await _read_uploads(request, settings)


async def _read_uploads(request: Request, settings: Settings) -> list[Upload]:
    ctype, options = multipart.parse_options_header(request.headers.get("content-type", ""))
    ctype = ctype.lower()
    if ctype == "multipart/form-data":
        boundary = options.get("boundary")
        if not boundary:
            raise InvalidInput("bad multipart body: the Content-Type header has no boundary")
        return parse_multipart(await request.body(), boundary, settings.max_files)
    if ctype.startswith("image/") or ctype in ("application/octet-stream", ""):
        body = await request.body()
        if not body:
            raise InvalidInput("empty body: send an image as multipart or as a raw image/* body")
        return [Upload(None, body)]
    raise UnsupportedMedia(f"unsupported content type {ctype!r}: send multipart/form-data or a "
                           "raw image/* body")


async def read_one(request: Request, settings: Settings) -> bytes:
    """The one picture of a request that takes exactly one (422 for several)."""
    uploads = await read_uploads(request, settings)
    if len(uploads) != 1:
        raise Unprocessable(f"send one image, got {len(uploads)}")
    return uploads[0].data


def _stray_part(name: str, is_file: bool) -> str:
    if is_file:
        return (f"multipart part {name!r} is a file, but pictures are read from parts "
                f"named 'file' (curl -F file=@digit.png)")
    return (f"multipart field {name!r} is not read: send pictures as 'file' parts and "
            f"options in the query string (?{name}=...)")


def parse_multipart(body: bytes, boundary: str, max_files: int) -> list[Upload]:
    """The file parts named ``file`` of a whole multipart/form-data body, in order.
    ``InvalidInput`` if malformed or for any other part (a picture under another name,
    or a form field meant as an option, would otherwise be ignored without a word),
    ``TooLarge`` if too many parts."""
    files: list[Upload] = []
    fields = 0
    filename: str | None = None
    chunks: list[bytes] = []
    try:
        with multipart.PushMultipartParser(boundary, content_length=len(body)) as parser:
            for event in parser.parse(body) if body else ():
                if isinstance(event, multipart.MultipartSegment):
                    filename, chunks = event.filename, []
                    if event.name != "file":
                        raise InvalidInput(_stray_part(event.name, filename is not None))
                    if filename is None:
                        fields += 1
                        if fields > MAX_FORM_FIELDS:
                            raise TooLarge(f"Too many fields: at most {MAX_FORM_FIELDS} "
                                           "non-file parts")
                    elif len(files) == max_files:
                        raise TooLarge(f"Too many files: at most {max_files} per request")
                elif event is None:
                    if filename is not None:
                        files.append(Upload(filename, b"".join(chunks)))
                elif filename is not None:
                    chunks.append(event)
    except multipart.MultipartError as exc:
        raise InvalidInput(f"bad multipart body: {exc}") from None
    if not files:
        raise InvalidInput("multipart body has no file parts (send the image as a "
                           "file field, e.g. curl -F file=@digit.png)")
    return files
