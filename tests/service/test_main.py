"""Process-wide set-up done by the app's start-up (service.main)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest

from service.config import Settings
from service.main import create_api

pytestmark = pytest.mark.anyio

# (setting, value, what the process reads back, how to set it back)
PROCESS_WIDE: list[tuple[str, float, Callable[[], float], Callable[[float], object]]] = [
    ("opencv_threads", 1, cv2.getNumThreads, lambda v: cv2.setNumThreads(int(v))),
    ("opencv_threads", 3, cv2.getNumThreads, lambda v: cv2.setNumThreads(int(v))),
    ("gil_switch_interval_ms", 0.5, lambda: 1000 * sys.getswitchinterval(),
     lambda v: sys.setswitchinterval(v / 1000)),
    ("gil_switch_interval_ms", 2.0, lambda: 1000 * sys.getswitchinterval(),
     lambda v: sys.setswitchinterval(v / 1000)),
]


@pytest.mark.parametrize(("field", "value", "read", "restore"), PROCESS_WIDE)
async def test_start_up_applies_process_wide_settings(
        tmp_path: Path, field: str, value: float, read: Callable[[], float],
        restore: Callable[[float], object]) -> None:
    before = read()
    try:
        api = create_api(Settings(models_dir=tmp_path, poll_interval_s=0,
                                  **{field: value}))  # type: ignore[arg-type]
        async with api.router.lifespan_context(api):
            assert read() == pytest.approx(value)
    finally:
        restore(before)


def test_switch_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="gil_switch_interval_ms"):
        Settings(gil_switch_interval_ms=0)
