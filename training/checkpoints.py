"""Runs that survive being killed: Keras's ``BackupAndRestore`` under the model's folder.

A run backs up its weights, optimizer state and epoch at the end of every epoch into
``<models-dir>/<name>/.checkpoints/<run>/<task>`` (or ``--checkpoint-dir``); the service
never reads folders whose names start with a dot. ``<run>`` is a digest of the settings
that shape the result, so the same command finds its own backup and resumes at the epoch
it reached, and a different command starts afresh. Each epoch's metrics are appended to
``history.csv`` beside it (Keras's ``CSVLogger``), so the history of a resumed run covers
every epoch once. The backup is deleted once the version is published.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil

import keras

from training.config import TrainConfig
from training.distribute import Task

log = logging.getLogger(__name__)

# Settings that do not change what is trained: where things are read and written, and how.
_NOT_THE_RUN = ("data_dir", "models_dir", "strategy", "resume", "checkpoint_dir")


def run_key(cfg: TrainConfig) -> str:
    """A short digest of everything that shapes the trained model."""
    shaping = {k: v for k, v in cfg.to_json().items() if k not in _NOT_THE_RUN}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:12]


class Backup:
    """The backup of one run, for one task of the cluster."""

    def __init__(self, cfg: TrainConfig, task: Task) -> None:
        root = cfg.checkpoint_dir or cfg.models_dir / cfg.model_name / ".checkpoints"
        self.dir = root / run_key(cfg) / task.name
        if not cfg.resume and self.dir.exists():
            shutil.rmtree(self.dir)
            log.info("--no-resume: removed the backup in %s", self.dir)
        self._history = self.dir / "history.csv"

    @property
    def resumed_at_epoch(self) -> int:
        """The epochs a previous attempt finished (0: a fresh run), as Keras wrote them."""
        try:
            meta = json.loads((self.dir / "training_metadata.json").read_text())
            return int(meta["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """After every epoch, append its metrics, then back up (in this order: an attempt
        killed between the two runs that epoch again and writes its row again, and
        ``history`` keeps the later row; the other order could lose a row)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return [keras.callbacks.CSVLogger(str(self._history), append=True),
                keras.callbacks.BackupAndRestore(str(self.dir), delete_checkpoint=False)]

    def history(self) -> dict[str, list[float]]:
        """Every epoch's metrics over all attempts, one row per epoch (the last written).
        Columns Keras wrote as "NA" throughout (``val_*`` without validation) are left out."""
        if not self._history.is_file():
            return {}
        with self._history.open(newline="") as f:
            rows = {int(row["epoch"]): row for row in csv.DictReader(f)}
        epochs = sorted(rows)
        keys = [k for k in (rows[epochs[0]] if rows else {}) if k != "epoch"
                and any(rows[e][k] != "NA" for e in epochs)]
        return {k: [float("nan") if rows[e][k] == "NA" else float(rows[e][k]) for e in epochs]
                for k in keys}

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        for parent in (self.dir.parent, self.dir.parent.parent):  # empty run and root folders
            try:
                parent.rmdir()
            except OSError:
                break
