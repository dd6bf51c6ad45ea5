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
    time). The admin key also opens inference calls; admin calls need the admin key (the
    API key when no admin key is set) and are off without either. ``header(name)`` reads
    one header of the call (only when a key is configured)."""
    wanted = settings.key(admin=admin)
    if wanted is None:
        if admin:
            raise Forbidden("admin actions are disabled: set CNNLAB_ADMIN_API_KEY (or "
                            "CNNLAB_API_KEY) to enable them")
        return
    if not _presents_one_of(header, [wanted] if admin else _configured(settings)):
        raise Unauthenticated(f"missing or wrong {'admin ' if admin else ''}API key (send "
                              "X-API-Key or Authorization: Bearer)")


def holds_key(header: Callable[[str], str], settings: Settings) -> bool:
    """Whether a call may see what only key holders see (load errors naming files): it
    presents a configured key (the API key or the admin key), or no key is configured."""
    keys = _configured(settings)
    return not keys or _presents_one_of(header, keys)


def _configured(settings: Settings) -> list[str]:
    """The keys that open a non-admin call: the API key and the admin key, those set."""
    return [k for k in (settings.key(), settings.key(admin=True)) if k]


def _presents_one_of(header: Callable[[str], str], keys: list[str]) -> bool:
    """Whether the call presents one of ``keys`` (each compared in constant time)."""
    presented = presented_key(header).encode()
    return any(hmac.compare_digest(presented, k.encode()) for k in keys)
