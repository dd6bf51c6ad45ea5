"""The process's heap: what the garbage collector walks, and what goes back to the kernel.

A loaded SavedModel is tens of thousands of Python objects in reference cycles (trackable
objects and their parents, functions and their graphs) over native memory. Unloading a
version frees it only once those cycles are collected, and glibc's allocator then keeps
the freed pages in its per-thread arenas, where RSS still counts them: every reload left
the process larger until a plateau. ``give_back`` after an unload collects the cycles and
trims every arena (``malloc_trim``, as Triton's TensorFlow backend does after an unload).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import time

log = logging.getLogger(__name__)


def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """glibc's ``malloc_trim``, or None on a C library without it (musl, macOS)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def freeze_heap() -> None:
    """Before the models load: move every object alive now (importing TensorFlow leaves
    hundreds of thousands, alive as long as the process) out of the garbage collector's
    sight, so a full collection under load does not walk them again. Models' objects stay
    in sight: they are freed when a version is unloaded."""
    gc.collect()
    gc.freeze()


def give_back() -> None:
    """After a version is unloaded and its references dropped: collect its reference
    cycles, then return the freed memory to the kernel."""
    started = time.perf_counter()
    collected = gc.collect()
    if _TRIM is not None:
        _TRIM(0)
    log.debug("heap: %d objects collected and arenas trimmed in %.3f s", collected,
              time.perf_counter() - started)
