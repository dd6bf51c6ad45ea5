"""Process-wide set-up done by the app's start-up (service.main)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from service.config import Settings
from service.main import create_api

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("threads", [1, 3])
async def test_start_up_sizes_opencvs_thread_pool(tmp_path: Path, threads: int) -> None:
    before = cv2.getNumThreads()
    try:
        api = create_api(Settings(models_dir=tmp_path, poll_interval_s=0,
                                  opencv_threads=threads))
        async with api.router.lifespan_context(api):
            assert cv2.getNumThreads() == threads
    finally:
        cv2.setNumThreads(before)
