"""Admin actions reach every worker: apply here, then tell the peers over Unix sockets."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import anyio
import pytest

from service.errors import ApiError, not_found
from service.peers import AdminAction, PeerServer, act, replay

pytestmark = pytest.mark.anyio


class FakeRepo:
    """Records what was done to it; knows one model, ``tiny``, with versions 1 and 2."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def entry(self, name: str) -> None:
        if name != "tiny":
            raise not_found(f"model {name!r} not found")

    async def refresh(self, only: str | None = None) -> None:
        self.calls.append(("refresh", only))

    async def set_enabled(self, name: str, enabled: bool) -> None:
        self.entry(name)
        self.calls.append(("enabled", name, enabled))

    def set_label(self, name: str, label: str, version: int) -> None:
        self.entry(name)
        if version not in (1, 2):
            raise ApiError(400, f"cannot point label {label!r} at version {version}")
        self.calls.append(("label", name, label, version))


async def test_an_action_is_applied_here_and_on_every_peer(tmp_path: Path) -> None:
    here: Any = FakeRepo()
    peers: list[Any] = [FakeRepo(), FakeRepo()]
    servers = [PeerServer(r, tmp_path, name=f"w{i}") for i, r in enumerate(peers)]
    for s in servers:
        await s.start()
    try:
        await act(here, tmp_path, AdminAction("unload", "tiny"), me="w9")
        await act(here, tmp_path, AdminAction("label", "tiny", "stable", 2), me="w9")
    finally:
        for s in servers:
            await s.stop()
    expected = [("enabled", "tiny", False), ("label", "tiny", "stable", 2)]
    assert here.calls == expected
    assert [r.calls for r in peers] == [expected, expected]
    assert not list(tmp_path.glob("*.sock"))  # a stopped worker removes its socket


async def test_without_peers_an_action_is_only_applied_here(tmp_path: Path) -> None:
    here: Any = FakeRepo()
    await act(here, None, AdminAction("reload"))
    assert here.calls == [("refresh", None)]


async def test_a_refused_action_is_refused_before_any_peer_hears_of_it(tmp_path: Path) -> None:
    here: Any = FakeRepo()
    peer: Any = FakeRepo()
    server = PeerServer(peer, tmp_path, name="w0")
    await server.start()
    try:
        with pytest.raises(ApiError) as err:
            await act(here, tmp_path, AdminAction("reload", "nope"), me="w9")
    finally:
        await server.stop()
    assert err.value.status_code == 404
    assert peer.calls == []


async def test_a_peer_that_fails_is_named_in_a_503(tmp_path: Path) -> None:
    here: Any = FakeRepo()
    peer: Any = FakeRepo()

    def refuse(*args: object) -> None:
        raise ApiError(400, "no such version here")

    peer.set_label = refuse
    server = PeerServer(peer, tmp_path, name="w0")
    await server.start()
    try:
        with pytest.raises(ApiError) as err:
            await act(here, tmp_path, AdminAction("label", "tiny", "stable", 1), me="w9")
    finally:
        await server.stop()
    assert err.value.status_code == 503
    assert "worker w0: no such version here" in err.value.message
    assert here.calls == [("label", "tiny", "stable", 1)]  # applied where it was asked


async def test_the_socket_of_a_dead_worker_is_skipped_and_removed(tmp_path: Path) -> None:
    stale = tmp_path / "4242.sock"
    with socket.socket(socket.AF_UNIX) as s:  # bound, never listening: as a dead worker's
        s.bind(str(stale))
    here: Any = FakeRepo()
    await act(here, tmp_path, AdminAction("load", "tiny"), me="w9")
    assert here.calls == [("enabled", "tiny", True)]
    assert not stale.exists()


async def test_a_starting_worker_replays_the_state_changing_actions(tmp_path: Path) -> None:
    here: Any = FakeRepo()
    for action in (AdminAction("unload", "tiny"), AdminAction("label", "tiny", "stable", 1),
                   AdminAction("reload"), AdminAction("load", "tiny"),
                   AdminAction("label", "tiny", "stable", 2)):
        await act(here, tmp_path, action, me="w9")
    newcomer: Any = FakeRepo()
    await replay(newcomer, tmp_path)
    # the last word per model and label, in the order taken; a reload is not replayed
    assert newcomer.calls == [("enabled", "tiny", True), ("label", "tiny", "stable", 2)]


async def test_an_action_a_starting_worker_cannot_apply_is_skipped(tmp_path: Path) -> None:
    here: Any = FakeRepo()
    await act(here, tmp_path, AdminAction("label", "tiny", "stable", 2), me="w9")
    await act(here, tmp_path, AdminAction("unload", "tiny"), me="w9")
    newcomer: Any = FakeRepo()

    def refuse(*args: object) -> None:
        raise ApiError(400, "no version 2 here")

    newcomer.set_label = refuse
    await replay(newcomer, tmp_path)
    assert newcomer.calls == [("enabled", "tiny", False)]


async def test_an_action_taken_while_a_worker_replays_reaches_it(tmp_path: Path) -> None:
    here: Any = FakeRepo()
    await act(here, tmp_path, AdminAction("unload", "tiny"), me="w9")
    gate = anyio.Event()

    class SlowRepo(FakeRepo):  # its replay takes until the gate opens
        async def set_enabled(self, name: str, enabled: bool) -> None:
            await gate.wait()
            await super().set_enabled(name, enabled)

    newcomer: Any = SlowRepo()
    server = PeerServer(newcomer, tmp_path, name="w1")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.start)
            while not (tmp_path / "w1.sock").exists():  # listening, replay under way
                await anyio.sleep(0.01)
            tg.start_soon(act, here, tmp_path, AdminAction("load", "tiny"))
            await anyio.sleep(0.1)
            gate.set()
    await server.stop()
    # the replayed unload, then the load taken meanwhile: the newcomer serves the model
    assert newcomer.calls == [("enabled", "tiny", False), ("enabled", "tiny", True)]
