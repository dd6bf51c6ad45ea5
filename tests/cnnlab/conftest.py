"""The capture store's backends: an SQLite file, and a real PostgreSQL server that the
tests start themselves (Debian's package, installed by ``make test``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on both backends, each time on an empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    url: str = request.getfixturevalue("postgres_url")
    import sqlalchemy as sa

    from cnnlab.captures import metadata

    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()
    return url
