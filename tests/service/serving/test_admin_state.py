from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import Conflict
from service.serving.admin_state import AdminState, ModelState, StateFile

pytestmark = pytest.mark.anyio


async def test_an_update_is_written_one_generation_on(tmp_path: Path) -> None:
    store, other = StateFile(tmp_path / "state.json"), StateFile(tmp_path / "state.json")
    other.read()
    async with store.update() as state:
        state.model("mnist").enabled = False
        state.model("mnist").labels["stable"] = 2
    assert other.changed()
    assert other.read() == AdminState(1, {"mnist": ModelState(False, {"stable": 2})})
    assert not other.changed()


async def test_a_failed_update_writes_nothing(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "state.json")
    with pytest.raises(RuntimeError):
        async with store.update() as state:
            state.model("mnist").enabled = False
            raise RuntimeError("refused")
    assert store.read() == AdminState()


async def test_without_a_file_the_state_stays_in_memory() -> None:
    store = StateFile(None)
    async with store.update() as state:
        state.model("tiny").labels["canary"] = 1
    assert store.read().models["tiny"].labels == {"canary": 1}
    assert not store.changed()


async def test_a_state_that_cannot_be_stored_is_a_conflict(tmp_path: Path) -> None:
    """A models directory that cannot take the file (read-only, gone): the admin action
    is refused with what to do, nothing is applied."""
    state = StateFile(tmp_path / "gone" / "admin-state.json")
    with pytest.raises(Conflict, match="CNNLAB_ADMIN_STATE_FILE"):
        async with state.update() as changed:
            changed.unload("mnist")
    assert state.read().models == {}
