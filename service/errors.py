"""Errors a client caused or must be told about, raised anywhere in the service and
answered in one shape by every face (``service.api.errors``)."""

from __future__ import annotations

import json


def first_line(exc: BaseException, limit: int) -> str:
    """The first line of ``exc``'s message (TensorFlow's run on for pages), at most
    ``limit`` characters; its type's name when it has no message."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


class ApiError(Exception):
    """An error a client caused or must be told about, with its HTTP status."""

    def __init__(self, status_code: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def overloaded(message: str, retry_after_s: int = 1) -> ApiError:
    return ApiError(503, message, {"Retry-After": str(retry_after_s)})


def parse_json(raw: bytes, what: str) -> object:
    """Parse a JSON body; malformed or absurdly nested input is a 400, never a 500."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise bad_request(f"{what} is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"{what} is not valid JSON: {exc}") from None
