"""A version that failed to load is tried again when its files change (the poll) and
when an admin asks for a reload, never otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.app import create_api
from service.runtime.settings import Settings
from service.serving import repository
from service.serving.admin_state import AdminState
from tests.helpers import export_tiny

pytestmark = pytest.mark.anyio


async def test_a_reload_retries_a_version_that_failed(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    export_tiny(tmp_path / "tiny", 1)
    export_tiny(tmp_path / "tiny", 2, seed=1)
    real, attempts = repository.load_version, []

    def flaky(name: str, version: int, *args: Any, **kwargs: Any) -> Any:
        attempts.append(version)
        if version == 2 and attempts.count(2) == 1:  # a passing failure (I/O, memory)
            raise OSError("the volume went away for a moment")
        return real(name, version, *args, **kwargs)

    monkeypatch.setattr(repository, "load_version", flaky)
    api = create_api(Settings(models_dir=tmp_path, poll_interval_s=0,
                              admin_state_file=tmp_path / "state.json"))
    async with api.router.lifespan_context(api):
        repo: repository.ModelRepository = api.state.plane.repo
        assert repo.resolve("tiny").version == 1 and 2 in repo.entry("tiny").failed
        await repo.refresh()                      # the same files: not tried again
        assert attempts.count(2) == 1
        await repo.administer(AdminState.rescan)  # /admin/reload
        assert repo.resolve("tiny").version == 2 and attempts.count(2) == 2
