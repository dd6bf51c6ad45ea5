from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tests.helpers import (
    BUNDLED_MODELS,
    ROOT,
    Server,
    export_tiny,
    free_port,
    run_server,
    shapes_folder,
)


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir with one tiny model version (fast to load)."""
    root = tmp_path_factory.mktemp("tiny-models")
    export_tiny(root / "tiny")
    return root


@pytest.fixture(scope="session")
def shapes_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a models dir with ``shapes/1``, the folder it was trained on): 64x64 colour
    pictures of three shapes, trained on by ``python -m training train --data-dir`` for a
    few epochs with a tutorial CNN. Tests that publish more versions copy it first."""
    root = tmp_path_factory.mktemp("shapes")
    pictures = shapes_folder(root / "shapes", per_class=40)
    models = root / "models"
    done = subprocess.run(
        [sys.executable, "-m", "training", "train", "--data-dir", str(pictures), "--arch",
         "fashion_cnn", "--epochs", "8", "--batch-size", "16", "--validation-split", "0.2",
         "--models-dir", str(models), "--strategy", "one"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Exported shapes version 1" in done.stdout
    return models, pictures


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


PG_BIN = Path("/usr/lib/postgresql")


def _pg_tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(PG_BIN.glob(f"*/bin/{name}"), reverse=True)), None)
    if found is None:
        pytest.fail(f"PostgreSQL's {name} is missing: make test installs Debian's postgresql")
    return found


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on a loopback port (run as the ``postgres`` user
    when the tests run as root: PostgreSQL refuses root)."""
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="cnnlab-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    subprocess.run([*as_user, _pg_tool("initdb"), "-D", str(data), "-A", "trust", "-U",
                    "postgres", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, _pg_tool("pg_ctl"), "-D", str(data), "-w", "-l",
                    str(folder / "log"), "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, _pg_tool("pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each capture store test runs on both backends (an SQLite file, the PostgreSQL
    server of ``postgres_url``), each time on an empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    url: str = request.getfixturevalue("postgres_url")
    empty_store(url)
    return url


def empty_store(url: str) -> None:
    """Drop the capture store's tables and its schema revision."""
    import sqlalchemy as sa

    from cnnlab.captures import metadata

    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    with engine.begin() as db:
        db.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        db.execute(sa.text("DROP TABLE IF EXISTS captures"))  # (a first-revision one)
    engine.dispose()
