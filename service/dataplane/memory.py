"""The bytes of request bodies and gRPC messages one worker holds at once, one budget for
every face (``CNNLAB_MAX_BODY_MEMORY_BYTES``).

An HTTP body counts the bytes received so far, as they arrive (not the Content-Length it
declares: a client that declares 10 MiB and trickles holds only what it sent); a gRPC
message counts its size from the moment its call starts. Both give their bytes back when
the request ends. A request that would take the worker over the budget is refused with
503 + Retry-After / RESOURCE_EXHAUSTED (``MemoryFull``): the next one may fit.
"""

from __future__ import annotations

from service.errors import MemoryFull


class BodyMemory:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0

    def take(self, size: int) -> None:
        """Hold ``size`` more bytes, or ``MemoryFull`` (nothing taken) when they do not fit."""
        if self.held + size > self.max_bytes:
            raise MemoryFull(f"this worker holds too many request bodies now ({self.held} "
                             f"bytes of {self.max_bytes}); retry")
        self.held += size

    def give(self, size: int) -> None:
        self.held -= size
