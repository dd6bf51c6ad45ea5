from __future__ import annotations

import pytest

from service.serving.policy import parse_policy


@pytest.mark.parametrize(("text", "versions", "served"), [
    ("latest", [1, 2, 3], [3]),
    ("latest:2", [3, 1, 2], [2, 3]),
    ("all", [2, 1], [1, 2]),
    ("specific:1,3", [1, 2, 3], [1, 3]),
    ("specific:7", [1, 2], []),
])
def test_policy_selects_versions(text: str, versions: list[int], served: list[int]) -> None:
    assert parse_policy(text).select(versions) == served


@pytest.mark.parametrize("text", ["newest", "latest:0", "specific:", "specific:a", "all:3"])
def test_bad_policies_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="latest|specific"):
        parse_policy(text)
