"""Process-wide tuning, in one place, called from the app's start-up; and the lower CPU
priority of background threads (the work pools', the capture writer's)."""

from __future__ import annotations

import contextlib
import os
import threading

import cv2

from cnnlab.devices import configure_devices
from service.runtime.settings import Settings


def tune_process(settings: Settings) -> str:
    """Before any model loads: TensorFlow's devices and thread pools, OpenCV's threads.
    Returns the device models are placed on."""
    device = configure_devices(*settings.tf_threads())
    # OpenCV's own pool would parallelise even a 28x28 resize, and its idle workers spin
    cv2.setNumThreads(settings.opencv_threads)
    return device


BACKGROUND_NICE = 10  # added to a pool thread's nice value (lower priority)


def lower_priority() -> None:
    """Run this thread (not the process) at a lower CPU priority, where the OS allows."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                       os.getpriority(os.PRIO_PROCESS, 0) + BACKGROUND_NICE)
