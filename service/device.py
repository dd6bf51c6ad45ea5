"""TensorFlow device set-up: GPU when present (memory growth on), CPU otherwise."""

from __future__ import annotations

import logging

import tensorflow as tf

log = logging.getLogger(__name__)


def configure_devices() -> str:
    """Enable memory growth on every GPU and return the device TF will place ops on.

    Memory growth stops TensorFlow from grabbing the whole card at start-up, so several
    replicas (or the trainer next to the server) can share one GPU. Must run before any
    tensor is created; later calls are harmless.
    """
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: growth can no longer change
            log.debug("memory growth not changed for %s (runtime already initialised)", gpu.name)
    device = "/GPU:0" if gpus else "/CPU:0"
    log.info("TensorFlow %s: %d GPU(s) visible, running on %s", tf.__version__, len(gpus), device)
    return device
