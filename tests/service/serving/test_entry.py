"""service.serving.entry: a model's versions in their latest states, and the files a
failed version is tried again after."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from service.serving.entry import ModelEntry, VersionStatus, fingerprint
from service.serving.policy import parse_policy
from service.serving.version import ServedVersion
from tests.helpers import export_tiny


def test_each_version_shows_its_latest_state_newest_first() -> None:
    entry = ModelEntry("tiny", parse_policy("all"))
    served = cast(ServedVersion, object())
    entry.ended[1] = "unloaded"
    entry.failed[2] = (frozenset(), "cannot load SavedModel: truncated")
    entry.failed[3] = (frozenset(), "an earlier failure")
    entry.loading.add(3)        # tried again: loading wins over the old failure
    entry.unloading.add(4)
    entry.ended[5] = "superseded by version policy"
    entry.served[5] = served    # loaded again since: available
    assert entry.status() == [
        VersionStatus(5, "AVAILABLE"), VersionStatus(4, "UNLOADING"),
        VersionStatus(3, "LOADING"), VersionStatus(2, "END", "cannot load SavedModel: truncated"),
        VersionStatus(1, "END")]
    assert entry.latest() is served


def test_an_empty_entry_has_no_latest_version() -> None:
    entry = ModelEntry("tiny", parse_policy("latest"))
    assert entry.latest() is None and entry.status() == []


def test_the_fingerprint_sees_every_file(tmp_path: Path) -> None:
    version = export_tiny(tmp_path / "tiny", 1)
    before = fingerprint(version)
    (version / "variables" / "extra").write_bytes(b"x")
    assert fingerprint(version) != before
    assert any(path == "saved_model.pb" for path, *_ in cast(Any, before))
