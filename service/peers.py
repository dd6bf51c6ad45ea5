"""Admin actions, and how one taken by one worker reaches the others.

With several workers (``service.workers``) an admin request lands on one of them. That
worker applies the action, then sends it to every other worker over their Unix sockets
in the run directory (one JSON line each way); each applies it to its own repository. The
request answers once all have, or says which could not (503). With one worker there are
no peers and an action is simply applied.

Each action that changes state (load, unload, a label) is also written to a journal in the
directory, last one per model (and label) winning: a worker that starts later — one that
uvicorn's supervisor restarted after a crash — replays it before it takes traffic, so it
serves what its peers serve and not what the configuration said at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from service.errors import ApiError
from service.repository import ModelRepository

log = logging.getLogger(__name__)

# a reload may load and warm up new versions: give a peer as long as a start-up takes
PEER_TIMEOUT_S = 180.0
_MAX_LINE = 64 * 1024


@dataclass(frozen=True)
class AdminAction:
    op: Literal["reload", "load", "unload", "label"]
    name: str | None = None       # None with "reload": the whole repository
    label: str | None = None
    version: int | None = None


async def apply(repo: ModelRepository, action: AdminAction) -> None:
    """Carry out ``action`` on this process's repository (``ApiError`` if it cannot)."""
    name = action.name
    if action.op == "reload":
        if name is not None:
            repo.entry(name)  # 404 for an unknown model
        await repo.refresh(name)
    elif name is None:
        raise ApiError(400, f"admin action {action.op!r} needs a model name")
    elif action.op in ("load", "unload"):
        await repo.set_enabled(name, action.op == "load")
    elif action.label is None or action.version is None:
        raise ApiError(400, "a label action needs a label and a version")
    else:
        repo.set_label(name, action.label, action.version)


async def act(repo: ModelRepository, directory: Path | None, action: AdminAction, *,
              me: str | None = None) -> None:
    """Apply ``action`` here, then on every peer worker listening in ``directory`` (None:
    a single process, no peers). ``me`` names this worker's socket (default: its pid)."""
    await apply(repo, action)
    if directory is None:
        return
    _journal(directory, action)
    own = _socket_path(directory, me)
    peers = sorted(p for p in directory.glob("*.sock") if p != own)
    failures = [f for f in await asyncio.gather(*(_tell(p, action) for p in peers)) if f]
    if failures:
        raise ApiError(503, f"applied on this worker, but {len(failures)} of {len(peers)} "
                            f"other worker(s) failed: {'; '.join(failures)}",
                       {"Retry-After": "1"})


def _journal(directory: Path, action: AdminAction) -> None:
    """Record a state-changing ``action`` (under a lock: two workers may write at once)."""
    if action.op == "reload":
        return  # changes nothing a new worker would not see on its own start-up scan
    key = f"{action.name}/{'enabled' if action.op in ('load', 'unload') else action.label}"
    with (directory / "journal.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = _read_journal(directory)
        entries.pop(key, None)  # re-inserted last: replayed in the order they were taken
        entries[key] = asdict(action)
        staged = directory / "journal.json.tmp"
        staged.write_text(json.dumps(entries))
        staged.replace(directory / "journal.json")


def _read_journal(directory: Path) -> dict[str, dict[str, object]]:
    try:
        entries: dict[str, dict[str, object]] = json.loads(
            (directory / "journal.json").read_text())
    except FileNotFoundError:
        return {}
    return entries


async def replay(repo: ModelRepository, directory: Path) -> None:
    """Apply every journaled action to a worker that is starting (one that cannot be
    applied, e.g. a label on a version this worker failed to load, is logged)."""
    for entry in _read_journal(directory).values():
        action = AdminAction(**entry)  # type: ignore[arg-type]
        try:
            await apply(repo, action)
        except ApiError as exc:
            log.warning("admin action %s not replayed on this worker: %s", action, exc.message)


def _socket_path(directory: Path, name: str | None = None) -> Path:
    return directory / f"{name or os.getpid()}.sock"


async def _tell(path: Path, action: AdminAction) -> str:
    """Send ``action`` to the worker listening on ``path``; '' if it applied it, else why
    not. A socket nobody listens on any more (its worker died) is removed and skipped."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=_MAX_LINE)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(OSError):
            path.unlink()
        return ""
    try:
        writer.write(json.dumps(asdict(action)).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), PEER_TIMEOUT_S)
        answer = json.loads(line) if line else {"error": "closed the connection"}
    except (OSError, TimeoutError, ValueError) as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    error = answer.get("error")
    return f"worker {path.stem}: {error}" if error else ""


class PeerServer:
    """This worker's end: applies the actions its peers send."""

    def __init__(self, repo: ModelRepository, directory: Path, name: str | None = None) -> None:
        self.repo = repo
        self.directory = directory
        self.path = _socket_path(directory, name)
        self._server: asyncio.Server | None = None
        self._turn = asyncio.Lock()  # one action at a time, the replay first

    async def start(self) -> None:
        """Listen for the peers' actions, then replay the journal (a worker restarted
        after admin actions catches up). Listening first, an action taken meanwhile
        cannot miss this worker: it waits for the replay, then applies (actions are
        journaled before they are sent, and applying one twice changes nothing)."""
        async with self._turn:
            self._server = await asyncio.start_unix_server(self._handle, str(self.path),
                                                           limit=_MAX_LINE)
            await replay(self.repo, self.directory)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer: dict[str, object] = {"ok": True}
        try:
            action = AdminAction(**json.loads(await reader.readline()))
            async with self._turn:
                await apply(self.repo, action)
        except ApiError as exc:
            answer = {"error": exc.message, "status": exc.status_code}
        except Exception:
            log.exception("admin action from a peer worker failed")
            answer = {"error": "internal error (see that worker's log)"}
        try:
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()
