"""Process-wide tuning, in one place, called from the app's start-up."""

from __future__ import annotations

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
