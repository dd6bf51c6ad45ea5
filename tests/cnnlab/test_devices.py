"""TensorFlow device and thread-pool set-up (in a fresh interpreter: the pools can only be
sized before TensorFlow's runtime starts, and this test process started it long ago)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

_PROBE = """
import tensorflow as tf
from cnnlab.devices import configure_devices
device = configure_devices({intra}, {inter})
print(device, tf.config.threading.get_intra_op_parallelism_threads(),
      tf.config.threading.get_inter_op_parallelism_threads())
"""


def _probe(intra: int, inter: int) -> list[str]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(intra=intra, inter=inter)],
                         cwd=ROOT, capture_output=True, text=True, check=True, timeout=120,
                         env={"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
                              "PATH": "/usr/bin:/bin"})
    return out.stdout.split()


def test_thread_pools_are_sized_from_settings() -> None:
    assert _probe(1, 2) == ["/CPU:0", "1", "2"]


def test_zero_leaves_tensorflow_its_own_choice() -> None:
    assert _probe(0, 0) == ["/CPU:0", "0", "0"]
