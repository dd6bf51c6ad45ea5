"""Unloading a version gives back what loading it took (service.runtime.heap)."""

from __future__ import annotations

import asyncio
import gc
import shutil
import time
import weakref
from pathlib import Path

import pytest
import tensorflow as tf

from service.app import create_api
from service.runtime.settings import Settings
from service.serving.repository import ModelRepository
from tests.helpers import export_tiny

pytestmark = pytest.mark.anyio


async def _until_ended(repo: ModelRepository, version: int) -> None:
    """Until the repository has finished unloading ``version`` of tiny."""
    deadline = time.monotonic() + 60
    while version not in repo.entry("tiny").ended:
        assert time.monotonic() < deadline, f"version {version} never finished unloading"
        await asyncio.sleep(0.05)


def _live_graphs() -> int:
    """TensorFlow graphs alive (a loaded SavedModel's functions each hold one)."""
    return sum(isinstance(o, tf.Graph) for o in gc.get_objects())


async def test_unloaded_versions_are_freed_and_nothing_accumulates(tmp_path: Path) -> None:
    model_dir = tmp_path / "tiny"
    export_tiny(model_dir, 1)
    api = create_api(Settings(models_dir=tmp_path, poll_interval_s=0))
    async with api.router.lifespan_context(api):
        repo: ModelRepository = api.state.plane.repo
        graphs: list[int] = []
        for cycle in range(6):
            # version 1 came with the start-up on the first cycle, a reload after that
            served = repo.resolve("tiny", 1)
            gone = [weakref.ref(served), weakref.ref(served.module)]
            del served
            shutil.copytree(model_dir / "1", model_dir / "2")  # publish: 1 is superseded
            await repo.refresh("tiny")
            await _until_ended(repo, 1)
            assert [ref() for ref in gone] == [None, None], f"version 1 alive (cycle {cycle})"
            shutil.rmtree(model_dir / "2")  # delete: 1 is served again
            await repo.refresh("tiny")
            await _until_ended(repo, 2)
            assert repo.resolve("tiny").version == 1
            graphs.append(_live_graphs())
    # the first reload may create what later ones reuse; after it, no growth at all
    assert graphs[1:] == [graphs[1]] * 5, graphs
