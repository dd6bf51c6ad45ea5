"""TensorFlow's start-up lines kept out of the logs.

Importing TensorFlow and looking for a GPU print lines from C++ (oneDNN notices, "Could
not find cuda drivers", CPU instruction sets, and on a host without a GPU an ``E0000 ...
failed call to cuInit`` that reads like a failure). They are printed by absl before
TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL``, so that setting cannot hide them. Here the
process's stderr is captured while those two steps run, and every line but these is
written back; the device in use is logged once by ``cnnlab.devices``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# absl's preamble, info lines, and CUDA's probing (kept on a host with an NVIDIA driver,
# where a cuInit failure is real news)
_NOISE = re.compile(rb"^(WARNING: All log messages before absl::InitializeLog\(\)"
                    rb"|I0000 |To enable the following instructions)")
_NO_GPU_NOISE = re.compile(rb"^E0000 .*(cuInit|cuda_platform)")


@contextlib.contextmanager
def start_up_lines_dropped(gpu_host: bool) -> Iterator[None]:
    """Run the block with stderr captured; then write back every line but TensorFlow's
    start-up notices (and, when ``gpu_host`` is false, its CUDA probing errors)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture:
                if _NOISE.match(line) or (not gpu_host and _NO_GPU_NOISE.match(line)):
                    continue
                os.write(2, line)
