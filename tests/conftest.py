from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tests.helpers import BUNDLED_MODELS, Server, export_tiny, run_server


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir with one tiny model version (fast to load)."""
    root = tmp_path_factory.mktemp("tiny-models")
    export_tiny(root / "tiny")
    return root


@pytest.fixture(scope="session")
def bundled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real service over the bundled, really trained models."""
    if not any(BUNDLED_MODELS.glob("*/*/saved_model.pb")):
        pytest.fail("no bundled models in models/ (they are part of the repository)")
    with run_server(BUNDLED_MODELS, tmp_path_factory.mktemp("bundled"),
                    version_policy="latest") as server:
        yield server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Expose each phase's report on the item (the browser test screenshots failures)."""
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{rep.when}", rep)
