"""TensorFlow device set-up: GPU when present (memory growth on), CPU otherwise."""

from __future__ import annotations

import logging

import tensorflow as tf

log = logging.getLogger(__name__)


def configure_devices(intra_op_threads: int = 0, inter_op_threads: int = 0) -> str:
    """Enable memory growth on every GPU, size TF's CPU thread pools, and return the
    device TF will place ops on.

    Memory growth stops TensorFlow from grabbing the whole card at start-up, so several
    replicas (or the trainer next to the server) can share one GPU. On a small CPU host,
    fewer intra-op threads leave a core to the HTTP event loop. Must run before any
    tensor is created; later calls are harmless.
    """
    try:
        if intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
        if inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    except RuntimeError:  # the runtime already started (e.g. a second app in one process)
        log.debug("TensorFlow thread pools already set up; sizes not changed")
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: growth can no longer change
            log.debug("memory growth not changed for %s (runtime already initialised)", gpu.name)
    device = "/GPU:0" if gpus else "/CPU:0"
    log.info("TensorFlow %s: %d GPU(s) visible, running on %s (intra-op threads %s, "
             "inter-op threads %s)", tf.__version__, len(gpus), device,
             tf.config.threading.get_intra_op_parallelism_threads() or "auto",
             tf.config.threading.get_inter_op_parallelism_threads() or "auto")
    return device
