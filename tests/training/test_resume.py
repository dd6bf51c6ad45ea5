"""Runs that survive being killed (training.checkpoints): a run SIGKILLed after an epoch
resumes there when the same command runs again, and publishes one whole version."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import ROOT
from tests.training.test_data import make_dataset_dir
from training.checkpoints import Backup, run_key
from training.config import resolve
from training.distribute import Task

EPOCHS = 4


def test_a_killed_run_resumes_at_its_epoch_and_publishes_once(tmp_path: Path) -> None:
    # batch 4 over 1,024 images: 256 steps, long enough an epoch to kill the run inside one
    data = make_dataset_dir(tmp_path / "data", n_train=1024, n_test=64)
    models = tmp_path / "models"
    command = [sys.executable, "-m", "training", "train", "mnist", "--arch", "cnn1",
               "--epochs", str(EPOCHS), "--batch-size", "4", "--data-dir", str(data),
               "--models-dir", str(models)]
    cfg = resolve("mnist", "cnn1", {"epochs": EPOCHS, "batch_size": 4, "data_dir": data,
                                    "models_dir": models})
    backup = Backup(cfg, Task())
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while backup.resumed_at_epoch < 1:  # the first epoch is backed up
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline, "no epoch was backed up"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    done = backup.resumed_at_epoch
    assert 1 <= done < EPOCHS
    # killed: no version, no half version; only the hidden backup
    assert [p.name for p in (models / "mnist").iterdir()] == [".checkpoints"]

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"Resuming from the backup in {backup.dir}: {done} of {EPOCHS}" in again.stdout
    assert f"Epoch {done + 1}/{EPOCHS}" in again.stdout and f"Epoch {done}/" not in again.stdout
    assert [p.name for p in (models / "mnist").iterdir()] == ["1"]  # backup removed
    meta = json.loads((models / "mnist" / "1" / "metadata.json").read_text())
    assert meta["resumed_at_epoch"] == done
    assert meta["epochs_run"] == EPOCHS and len(meta["history"]["val_accuracy"]) == EPOCHS


def test_no_resume_starts_afresh_and_other_settings_do_not_share_a_backup(
        tmp_path: Path) -> None:
    cfg = resolve("mnist", "cnn1", {"epochs": 3, "models_dir": tmp_path})
    backup = Backup(cfg, Task())
    backup.dir.mkdir(parents=True)
    (backup.dir / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    assert Backup(cfg, Task()).resumed_at_epoch == 2
    assert run_key(resolve("mnist", "cnn1", {"epochs": 4, "models_dir": tmp_path})) != \
        run_key(cfg)  # another recipe: another backup
    assert run_key(resolve("mnist", "cnn1", {"epochs": 3, "models_dir": tmp_path / "x",
                                             "strategy": "one"})) == run_key(cfg)
    fresh = Backup(resolve("mnist", "cnn1", {"epochs": 3, "models_dir": tmp_path,
                                             "resume": False}), Task())
    assert fresh.resumed_at_epoch == 0 and not fresh.dir.exists()


def test_history_keeps_one_row_per_epoch(tmp_path: Path) -> None:
    backup = Backup(resolve("mnist", "cnn1", {"models_dir": tmp_path}), Task())
    backup.dir.mkdir(parents=True)
    # epoch 1 written twice: a run killed after writing its row, before backing it up
    (backup.dir / "history.csv").write_text(
        "epoch,accuracy,loss,val_loss\n0,0.5,1.0,NA\n1,0.6,0.9,NA\n1,0.7,0.8,NA\n"
        "2,0.8,0.7,NA\n")  # val_loss: NA throughout, as Keras writes it without validation
    assert backup.history() == {"accuracy": [0.5, 0.7, 0.8], "loss": [1.0, 0.8, 0.7]}

