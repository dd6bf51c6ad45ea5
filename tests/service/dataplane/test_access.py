"""API keys, the same on every face: who may call, and who may see load errors."""

from __future__ import annotations

import pytest

from service.dataplane.access import check_key, holds_key
from service.errors import Forbidden, Unauthenticated
from service.runtime.settings import Settings


def headers(key: str | None = None, bearer: bool = False) -> dict[str, str]:
    if key is None:
        return {}
    return {"authorization": f"Bearer {key}"} if bearer else {"x-api-key": key}


@pytest.mark.parametrize(("settings", "sent", "admin", "allowed"), [
    (Settings(), None, False, True),                              # no key: open
    (Settings(), None, True, Forbidden),                          # ... admin off
    (Settings(api_key="k"), "k", False, True),
    (Settings(api_key="k"), "k", True, True),                     # admin falls back
    (Settings(api_key="k"), "x", False, Unauthenticated),
    (Settings(api_key="k", admin_api_key="a"), "k", True, Unauthenticated),
    (Settings(api_key="k", admin_api_key="a"), "a", False, True),  # admin opens all
    (Settings(admin_api_key="a"), None, False, True),             # inference open
])
def test_who_may_call(settings: Settings, sent: str | None, admin: bool,
                      allowed: bool | type[Exception]) -> None:
    sent_headers = headers(sent, bearer=admin)
    call = lambda: check_key(lambda h: sent_headers.get(h, ""), settings, admin=admin)  # noqa: E731
    if allowed is True:
        call()
    else:
        with pytest.raises(allowed):  # type: ignore[call-overload]
            call()


@pytest.mark.parametrize(("settings", "sent", "holds"), [
    (Settings(), None, True),
    (Settings(api_key="k"), None, False), (Settings(api_key="k"), "k", True),
    (Settings(admin_api_key="a"), None, False),  # only an admin key: still a secret to keep
    (Settings(admin_api_key="a"), "a", True),
])
def test_who_sees_load_errors(settings: Settings, sent: str | None, holds: bool) -> None:
    sent_headers = headers(sent)
    assert holds_key(lambda h: sent_headers.get(h, ""), settings) is holds
