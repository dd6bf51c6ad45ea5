"""One model as the repository holds it: its versions served, loading, unloading, ended
and failed (with the files they failed with, so a copy still arriving is tried again
once it changes), and their status as TF Serving reports it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from service.serving.policy import VersionPolicy
from service.serving.version import ServedVersion

Fingerprint = frozenset[tuple[str, int, int]]  # a version's files: (path, size, mtime)


@dataclass
class VersionStatus:
    version: int
    state: str            # LOADING | AVAILABLE | UNLOADING | END
    error: str = ""


@dataclass
class ModelEntry:
    name: str
    policy: VersionPolicy
    served: dict[int, ServedVersion] = field(default_factory=dict)
    loading: set[int] = field(default_factory=set)
    # version -> (its files when it failed, error); retried when any of them changes
    failed: dict[int, tuple[Fingerprint, str]] = field(default_factory=dict)
    ended: dict[int, str] = field(default_factory=dict)   # unloaded versions -> reason
    unloading: set[int] = field(default_factory=set)

    def latest(self) -> ServedVersion | None:
        return self.served[max(self.served)] if self.served else None

    def status(self) -> list[VersionStatus]:
        """Every version this worker knows of, newest first, in its latest state (a
        version that failed to load: END, with its error)."""
        rows: dict[int, VersionStatus] = {}
        for v in self.ended:
            rows[v] = VersionStatus(v, "END")
        for v, (_, err) in self.failed.items():
            rows[v] = VersionStatus(v, "END", err)
        for v in self.unloading:
            rows[v] = VersionStatus(v, "UNLOADING")
        for v in self.loading:
            rows[v] = VersionStatus(v, "LOADING")
        for v in self.served:
            rows[v] = VersionStatus(v, "AVAILABLE")
        return [rows[v] for v in sorted(rows, reverse=True)]


def fingerprint(path: Path) -> Fingerprint:
    """Every file of a version directory: (path inside it, size, mtime). A version that
    failed to load is tried again once this changes: a copy that wrote saved_model.pb
    before variables/ (``cp -r``, ``kubectl cp``, rsync) loads when the rest arrives."""
    files = set()
    for file in path.rglob("*"):
        with contextlib.suppress(OSError):  # (a file removed meanwhile)
            stat = file.stat()
            files.add((str(file.relative_to(path)), stat.st_size, stat.st_mtime_ns))
    return frozenset(files)
