"""Read image uploads from a request: multipart (one or many files) or a raw body."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from service.config import Settings
from service.errors import ApiError


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes


async def read_uploads(request: Request, settings: Settings) -> list[Upload]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=settings.max_files, max_fields=100,
                                      max_part_size=settings.max_upload_bytes)
        except (MultiPartException, HTTPException) as exc:
            detail = str(getattr(exc, "detail", exc))
            raise ApiError(413 if "Too many" in detail else 400,
                           f"bad multipart body: {detail}") from None
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not files:
            raise ApiError(400, "multipart body has no file parts (send the image as a "
                                "file field, e.g. curl -F file=@digit.png)")
        return [Upload(f.filename, await f.read()) for f in files]
    if ctype.startswith("image/") or ctype in ("application/octet-stream", ""):
        body = await request.body()
        if not body:
            raise ApiError(400, "empty body: send an image as multipart or as a raw image/* body")
        return [Upload(None, body)]
    raise ApiError(415, f"unsupported content type {ctype!r}: send multipart/form-data or a "
                        "raw image/* body")
