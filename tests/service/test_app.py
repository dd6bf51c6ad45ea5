"""Process-wide set-up done by the app's start-up (service.runtime.tuning)."""

from __future__ import annotations

import resource
from collections.abc import Callable
from pathlib import Path

import cv2
import httpx
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


def thread_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


async def test_start_up_builds_what_fastapi_would_build_at_the_first_request(
        tmp_path: Path) -> None:
    """FastAPI builds its routes' request models and the OpenAPI document lazily, on the
    event loop, at the first request that needs them (tens of milliseconds of CPU each);
    the start-up builds both, so the first requests cost what later ones do."""
    api = create_api(Settings(models_dir=tmp_path, poll_interval_s=0))
    async with api.router.lifespan_context(api), httpx.AsyncClient(
            transport=httpx.ASGITransport(api), base_url="http://t") as client:
        assert api.openapi_schema is not None
        costs = []
        for path in ("/api/models", "/api/models", "/openapi.json", "/openapi.json"):
            before = thread_cpu_s()
            assert (await client.get(path)).status_code == 200
            costs.append(thread_cpu_s() - before)
    first_models, later_models, first_openapi, later_openapi = costs
    assert first_models < later_models + 0.01, costs
    assert first_openapi < later_openapi + 0.01, costs
