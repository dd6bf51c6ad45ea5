"""Captured uploads in a SQL database, through SQLAlchemy Core: an embedded SQLite file by
default (write-ahead log, so several workers of one host write and read it at once), or
PostgreSQL by URL for several replicas. The same statements run on both.

A row is one uploaded picture as served: its original bytes, the picture the model saw
(PNG), the model, version, predicted class, confidence, out-of-distribution score and
verdict where the version has them, the prediction's id (unique with the picture's place
in its request) and the time; ``label`` is filled in by feedback.

The schema is versioned with Alembic (``cnnlab/migrations``): a store is brought to the
newest revision when it is opened, under a lock, so workers and replicas starting together
migrate it once. ``captures`` below is that newest schema.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

STARTUP_WAIT_S = 10.0  # how long a worker waits for another's switch to write-ahead logging
metadata = sa.MetaData()
captures = sa.Table(
    "captures", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("prediction_id", sa.String(64), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),  # the picture's place in its request
    sa.Column("created", sa.Float, nullable=False),     # Unix time
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("predicted", sa.Integer, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("ood_score", sa.Float),
    sa.Column("in_distribution", sa.Boolean),
    sa.Column("original", sa.LargeBinary, nullable=False),
    sa.Column("seen_png", sa.LargeBinary, nullable=False),
    sa.Column("label", sa.Integer),                      # the true class, from feedback
    sa.Column("labelled", sa.Float),
    sa.Index("ux_captures_prediction", "prediction_id", "position", unique=True),
    sa.Index("ix_captures_model", "model", "version"),
    sa.Index("ix_captures_created", "created"),
    sa.Index("ix_captures_model_label", "model", "label"),
)
MIGRATIONS = "cnnlab:migrations"
FIRST_REVISION = "0001"  # the schema stores made before migrations existed have
MIGRATION_LOCK = 0x636E6E6C  # PostgreSQL advisory lock key ("cnnl")


@dataclass(frozen=True)
class Capture:
    """One picture to store (``seen_png`` encoded by the writer, off the request path)."""

    prediction_id: str
    position: int
    created: float
    model: str
    version: int
    predicted: int
    confidence: float
    ood_score: float | None
    in_distribution: bool | None
    original: bytes
    seen_png: bytes


@dataclass(frozen=True)
class VersionFeedback:
    """What feedback says of one version."""

    version: int
    captured: int
    labelled: int
    correct: int
    out_of_distribution: int      # labelled pictures the version called not in distribution
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")   # another worker's write: wait, not fail
    _write_ahead_log(cursor)                     # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, one fsync per checkpoint
    cursor.close()


def _write_ahead_log(cursor: Any) -> None:
    """Switch the file to write-ahead logging; the mode is kept in the file, so a later
    connection finds it set. Workers starting together race for the switch, and SQLite
    answers the loser "database is locked" at once (it does not wait where waiting could
    deadlock), so the loser looks again for up to ``STARTUP_WAIT_S``."""
    deadline = time.monotonic() + STARTUP_WAIT_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def upgrade(engine: Engine) -> None:
    """Bring the store to the newest schema revision. A store made before migrations
    existed (its table, no revision) is first marked as the first revision. One process
    at a time: a file lock beside a SQLite file, an advisory lock on PostgreSQL."""
    with _migration_lock(engine), engine.begin() as db:
        if engine.dialect.name == "postgresql":
            db.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        config.attributes["connection"] = db
        tables = sa.inspect(db).get_table_names()
        if "captures" in tables and "alembic_version" not in tables:
            command.stamp(config, FIRST_REVISION)
        command.upgrade(config, "head")


def revision(engine: Engine) -> str | None:
    """The store's schema revision (None: not made yet)."""
    with engine.connect() as db:
        return MigrationContext.configure(db).get_current_revision()


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    fd = os.open(f"{path}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class CaptureStore:
    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = sa.create_engine(url, pool_pre_ping=True)
        if self.sqlite_file:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        upgrade(self.engine)

    @property
    def sqlite_file(self) -> bool:
        """A SQLite file (one host's store), not a database server replicas can share."""
        return self.engine.dialect.name == "sqlite"

    def close(self) -> None:
        self.engine.dispose()

    def add(self, rows: Sequence[Capture]) -> None:
        if rows:
            with self.engine.begin() as db:
                db.execute(captures.insert(), [vars(r) for r in rows])

    def prune(self, max_rows: int, max_age_s: float | None) -> int:
        """Apply the retention bounds; rows deleted. Pictures older than ``max_age_s`` go,
        labelled or not (what users sent is kept no longer than that); beyond
        ``max_rows`` pictures of one model, its unlabelled ones go first, oldest first, and
        its labelled ones (training data) only when no unlabelled one is left."""
        c = captures.c
        deleted = 0
        with self.engine.begin() as db:
            if max_age_s is not None:
                deleted += db.execute(captures.delete().where(
                    c.created < time.time() - max_age_s)).rowcount
            counts = db.execute(sa.select(c.model, sa.func.count()).group_by(c.model)).all()
            for model, count in counts:
                for labelled in (False, True):
                    excess = count - max_rows
                    if excess <= 0:
                        break
                    kind = c.label.is_not(None) if labelled else c.label.is_(None)
                    oldest = (sa.select(c.id).where(c.model == model, kind)
                              .order_by(c.id).limit(excess).scalar_subquery())
                    gone = db.execute(captures.delete().where(c.id.in_(oldest))).rowcount
                    deleted += gone
                    count -= gone
        return deleted

    def label(self, model: str, prediction_id: str, position: int,
              label: int) -> int | None:
        """Record the true class of one captured picture (the key is unique); its version,
        or None when no such capture exists."""
        where = sa.and_(captures.c.model == model, captures.c.prediction_id == prediction_id,
                        captures.c.position == position)
        with self.engine.begin() as db:
            version = db.execute(sa.select(captures.c.version).where(where)).scalar()
            if version is None:
                return None
            db.execute(captures.update().where(where).values(label=label,
                                                             labelled=time.time()))
        return int(version)

    def feedback(self, model: str, classes: int) -> list[VersionFeedback]:
        """Per version of ``model``: captured and labelled counts, the confusion matrix."""
        c = captures.c
        with self.engine.connect() as db:
            counts = db.execute(sa.select(c.version, sa.func.count()).where(c.model == model)
                                .group_by(c.version)).all()
            cells = db.execute(
                sa.select(c.version, c.label, c.predicted, sa.func.count(),
                          sa.func.sum(sa.case((c.in_distribution.is_(False), 1), else_=0)))
                .where(c.model == model, c.label.is_not(None))
                .group_by(c.version, c.label, c.predicted)).all()
        out = []
        for version, captured in sorted(counts):
            matrix = [[0] * classes for _ in range(classes)]
            outside = 0
            for v, label, predicted, n, ood in cells:
                if v == version and 0 <= label < classes and 0 <= predicted < classes:
                    matrix[label][predicted] += n
                    outside += int(ood or 0)
            labelled = sum(map(sum, matrix))
            correct = sum(matrix[k][k] for k in range(classes))
            out.append(VersionFeedback(int(version), int(captured), labelled, correct, outside,
                                       matrix))
        return out

    def labelled(self, model: str) -> Iterator[tuple[bytes, int, float]]:
        """The labelled captures of ``model``: the picture the model saw (PNG), its true
        class and when it was served, oldest first."""
        c = captures.c
        with self.engine.connect() as db:
            yield from db.execute(sa.select(c.seen_png, c.label, c.created)
                                  .where(c.model == model, c.label.is_not(None))
                                  .order_by(c.id)).tuples()
