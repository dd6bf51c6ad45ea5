"""The API key, the same on every face: ``x-api-key``, or ``authorization: Bearer <key>``
(HTTP headers and gRPC metadata use the same names)."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from service.errors import Forbidden, Unauthenticated
from service.runtime.settings import Settings


def presented_key(header: Callable[[str], str]) -> str:
    """The key a request presents; ``header(name)`` reads one header ("" when absent)."""
    auth = header("authorization")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return header("x-api-key")


def check_key(header: Callable[[str], str], settings: Settings, *,
              admin: bool = False) -> None:
    """When a key is configured every call but health needs it (compared in constant
    time); admin calls always need one, and are off without. ``header(name)`` reads one
    header of the call (only when a key is configured)."""
    if admin and not settings.api_key:
        raise Forbidden("admin actions are disabled: set CNNLAB_API_KEY to enable them")
    if settings.api_key and not hmac.compare_digest(presented_key(header).encode(),
                                                    settings.api_key.encode()):
        raise Unauthenticated("missing or wrong API key (send X-API-Key or "
                              "Authorization: Bearer)")
