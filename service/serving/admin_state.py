"""What the admin routes change (a model unloaded or loaded again, version labels), kept
in one small JSON file in the model repository that every worker of every replica applies.

An admin request lands on one worker of one replica. That worker applies the change to
its own repository first (so a change that cannot be made is refused before anything is
written), then writes the whole state to the file, atomically (a temporary file renamed
over it, like TensorFlow Serving's model config file), with a new generation number.
Every worker of every replica that reads the repository watches the file and applies a
new generation within ``WATCH_INTERVAL_S``; a worker or replica that starts later (a
restart, a pod the autoscaler adds) applies it before it takes traffic. Each worker
reports the generation it has applied as a gauge in prometheus-client's multiprocess
mode (``livemin``: the lowest over live workers), which is how the admin request knows
when every worker of its own replica has it; other replicas report theirs in
``/api/models``.

Without a path (unit tests) the state is kept in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from service.errors import Conflict

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.1


@dataclass
class ModelState:
    enabled: bool = True
    labels: dict[str, int] = field(default_factory=dict)


@dataclass
class AdminState:
    generation: int = 0
    models: dict[str, ModelState] = field(default_factory=dict)
    reloads: int = 0  # how many times an admin asked to rescan (failed versions retried)

    def model_labels(self, name: str) -> dict[str, int]:
        """The labels the admin set on ``name`` (without creating its state)."""
        return self.models[name].labels if name in self.models else {}

    def model(self, name: str) -> ModelState:
        """This model's state (created, enabled, on first use)."""
        return self.models.setdefault(name, ModelState())

    # the changes the admin routes make
    def load(self, name: str) -> None:
        self.model(name).enabled = True

    def unload(self, name: str) -> None:
        self.model(name).enabled = False

    def label(self, name: str, label: str, version: int) -> None:
        self.model(name).labels[label] = version

    def unlabel(self, name: str, label: str) -> None:
        self.model(name).labels.pop(label, None)

    def rescan(self) -> None:
        """Every worker rescans the repository and tries failed versions again."""
        self.reloads += 1

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> AdminState:
        raw = json.loads(text)
        return cls(raw["generation"], {name: ModelState(m["enabled"], dict(m["labels"]))
                                       for name, m in raw["models"].items()},
                   raw.get("reloads", 0))


class StateFile:
    """The admin state: in ``path`` (several workers) or in memory (``path`` None)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory = AdminState()
        self._seen: tuple[int, int] | None = None  # (inode, mtime) of the file last read

    def read(self) -> AdminState:
        if self.path is None:
            return AdminState.from_json(self._memory.to_json())  # a copy
        try:
            stat = self.path.stat()
            text = self.path.read_text()
        except FileNotFoundError:
            return AdminState()
        self._seen = (stat.st_ino, stat.st_mtime_ns)
        return AdminState.from_json(text)

    def changed(self) -> bool:
        """Whether the file was replaced since it was last read here."""
        if self.path is None:
            return False
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False
        return (stat.st_ino, stat.st_mtime_ns) != self._seen

    @contextlib.asynccontextmanager
    async def update(self) -> AsyncIterator[AdminState]:
        """The current state, one generation on, to change; written when the block ends
        without an exception. Updates from several workers take turns."""
        if self.path is None:
            state = self.read()
            state.generation += 1
            yield state
            self._memory = state
            return
        try:
            lock = await asyncio.to_thread(self._lock)
        except OSError as exc:
            raise Conflict(f"the admin state cannot be stored in {self.path.parent} "
                           f"({exc.strerror}): make it writable, or set "
                           "CNNLAB_ADMIN_STATE_FILE") from None
        try:
            state = self.read()
            state.generation += 1
            yield state
            staged = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            staged.write_text(state.to_json())
            staged.replace(self.path)
        finally:
            os.close(lock)

    def _lock(self) -> int:
        assert self.path is not None
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT,
                     0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd
