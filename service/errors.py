"""Domain errors: what went wrong, in words a client can act on.

Serving, image and dataplane code raise these and know nothing of protocols; each face
maps an error's kind (its class) to its protocol's code in one place: HTTP statuses in
``service.api.errors``, gRPC status codes in ``service.grpc.calls``.
"""

from __future__ import annotations

import orjson


def first_line(exc: BaseException, limit: int) -> str:
    """The first line of ``exc``'s message (TensorFlow's run on for pages), at most
    ``limit`` characters; its type's name when it has no message."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


class ServiceError(Exception):
    """An error a client caused or must be told about. ``retry_after_s``: when the same
    request may succeed later (overloaded, not ready, timed out)."""

    retry_after_s: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """The request is malformed: bad JSON, a wrong shape or type, an unreadable picture."""


class Unprocessable(ServiceError):
    """The request is well-formed, but a value in it cannot be used (out of range, a
    combination of options that does not fit)."""


class UnsupportedMedia(ServiceError):
    """A content type or picture format the service does not take."""


class TooLarge(ServiceError):
    """The request would cost more than a budget allows (bytes, pixels, elements,
    operations); the message names the cost and the limit."""


class NotFound(ServiceError):
    """No such model, version, label, layer, kernel or signature."""


class Conflict(ServiceError):
    """The request is valid, but the state it needs does not hold now (a label whose
    version is not served, a label set by configuration that the admin cannot delete)."""


class NotReady(ServiceError):
    """The model exists but has no version taking traffic yet."""

    retry_after_s = 1


class Overloaded(ServiceError):
    """The worker's queues for this kind of work are full; retry later."""

    retry_after_s = 1


class MemoryFull(Overloaded):
    """The worker holds as many bytes of requests as its budget allows now; retry. (gRPC
    says RESOURCE_EXHAUSTED, as for its other message limits.)"""


class TimedOut(ServiceError):
    """The work did not finish within the request timeout."""

    retry_after_s = 1


class Unauthenticated(ServiceError):
    """No API key, or the wrong one."""


class Forbidden(ServiceError):
    """The action is switched off (admin routes without an API key)."""


def parse_json(raw: bytes, what: str) -> object:
    """Parse a JSON body; malformed or absurdly nested input is ``InvalidInput``."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise InvalidInput(f"{what} is nested too deeply") from None
        if b"NaN" in raw or b"Infinity" in raw:
            raise InvalidInput(f"{what} is not valid JSON: NaN or infinity is not a JSON "
                               "number") from None
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from None
