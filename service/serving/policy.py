"""Version policies (TensorFlow Serving's): which versions on disk are served."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VersionPolicy:
    kind: str                 # "latest" | "all" | "specific"
    count: int = 1            # latest: how many of the newest
    versions: frozenset[int] = frozenset()

    def select(self, available: list[int]) -> list[int]:
        """The versions to serve out of the (loadable) versions on disk."""
        ordered = sorted(available)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[-self.count:]

    @property
    def text(self) -> str:
        """The policy as it is written in the settings."""
        if self.kind == "specific":
            return "specific:" + ",".join(map(str, sorted(self.versions)))
        return "latest" if self.kind == "latest" and self.count == 1 else (
            f"latest:{self.count}" if self.kind == "latest" else self.kind)


def parse_policy(text: str) -> VersionPolicy:
    """``latest``, ``latest:N``, ``all`` or ``specific:1,3``; ValueError otherwise."""
    kind, _, arg = text.strip().partition(":")
    if kind == "latest":
        n = int(arg) if arg else 1
        if n < 1:
            raise ValueError(f"latest:N needs N >= 1, got {text!r}")
        return VersionPolicy("latest", count=n)
    if kind == "all" and not arg:
        return VersionPolicy("all")
    if kind == "specific" and arg:
        try:
            versions = frozenset(int(v) for v in arg.split(","))
        except ValueError:
            raise ValueError(f"specific:V1,V2 needs integer versions, got {text!r}") from None
        return VersionPolicy("specific", versions=versions)
    raise ValueError(f"version policy must be latest[:N], all or specific:V1,V2; got {text!r}")
