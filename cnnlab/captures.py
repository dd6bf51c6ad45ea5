"""Captured uploads in a SQL database, through SQLAlchemy Core: an embedded SQLite file by
default (write-ahead log, so several workers of one host write and read it at once), or
PostgreSQL by URL for several replicas. The same statements run on both.

A row is one uploaded picture as served: its original bytes, the picture the model saw
(PNG), the model, version, predicted class, confidence, out-of-distribution score and
verdict where the version has them, the request id and the time; ``label`` is filled in
by feedback.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

STARTUP_WAIT_S = 10.0  # how long a worker waits for another's switch to write-ahead logging
metadata = sa.MetaData()
captures = sa.Table(
    "captures", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False),
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
    sa.Index("ix_captures_request", "request_id", "position"),
    sa.Index("ix_captures_model", "model", "version"),
    sa.Index("ix_captures_created", "created"),
)


@dataclass(frozen=True)
class Capture:
    """One picture to store (``seen_png`` encoded by the writer, off the request path)."""

    request_id: str
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


def _create_tables(engine: Engine) -> None:
    """The tables, unless they exist. Two workers starting together may both find them
    missing; the second's CREATE then fails (SQLite: "already exists", PostgreSQL: a
    duplicate type), and a second look finds the first's."""
    try:
        metadata.create_all(engine)
    except sa.exc.DBAPIError:
        metadata.create_all(engine)


class CaptureStore:
    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = sa.create_engine(url, pool_pre_ping=True)
        if self.sqlite_file:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        _create_tables(self.engine)

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
        """Delete what the retention bounds leave out (the oldest first); rows deleted."""
        deleted = 0
        with self.engine.begin() as db:
            if max_age_s is not None:
                deleted += db.execute(captures.delete().where(
                    captures.c.created < time.time() - max_age_s)).rowcount
            count = db.execute(sa.select(sa.func.count()).select_from(captures)).scalar_one()
            if count > max_rows:
                cutoff = db.execute(sa.select(captures.c.id).order_by(captures.c.id.desc())
                                    .offset(max_rows).limit(1)).scalar_one()
                deleted += db.execute(captures.delete().where(captures.c.id <= cutoff)).rowcount
        return deleted

    def label(self, model: str, request_id: str, position: int, label: int) -> int | None:
        """Record the true class of a captured picture; its version, or None when no such
        capture exists."""
        where = sa.and_(captures.c.model == model, captures.c.request_id == request_id,
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
