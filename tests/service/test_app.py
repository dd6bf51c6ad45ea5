"""Process-wide set-up done by the app's start-up (service.runtime.tuning)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import pytest

from service.app import create_api
from service.runtime.settings import Settings

pytestmark = pytest.mark.anyio

# (setting, value, what the process reads back, how to set it back)
PROCESS_WIDE: list[tuple[str, float, Callable[[], float], Callable[[float], object]]] = [
    ("opencv_threads", 1, cv2.getNumThreads, lambda v: cv2.setNumThreads(int(v))),
    ("opencv_threads", 3, cv2.getNumThreads, lambda v: cv2.setNumThreads(int(v))),
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
