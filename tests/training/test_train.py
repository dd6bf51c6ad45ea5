"""The training recipe's knobs do what the CLI says: each optimizer, the cosine schedule
with warm-up, and the validation choices."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from tests.training.test_data import make_dataset_dir
from training import train
from training.config import resolve
from training.data import load


@pytest.mark.parametrize(("name", "cls"), [
    ("adam", keras.optimizers.Adam), ("sgd", keras.optimizers.SGD),
    ("rmsprop", keras.optimizers.RMSprop), ("adadelta", keras.optimizers.Adadelta)])
def test_each_optimizer_is_built_with_the_learning_rate(name: str, cls: type) -> None:
    cfg = resolve("mnist", "cnn1", {"optimizer": name, "learning_rate": 0.05})
    opt = train.make_optimizer(cfg, steps=100)
    assert type(opt) is cls
    assert float(keras.ops.convert_to_numpy(opt.learning_rate)) == pytest.approx(0.05)


def test_cosine_schedule_warms_up_then_decays() -> None:
    cfg = resolve("mnist", "best", {"learning_rate": 2e-3, "lr_schedule": "cosine"})
    schedule = train.learning_rate(cfg, steps=1000)
    lr = [float(schedule(step)) for step in (0, 25, 50, 500, 999)]
    assert lr[0] == pytest.approx(2e-4)                 # starts at a tenth
    assert lr[1] == pytest.approx(1.1e-3, rel=1e-3)     # halfway up the 50-step warm-up
    assert lr[2] == pytest.approx(2e-3)                 # the peak
    assert lr[2] > lr[3] > lr[4] and lr[4] < 1e-5       # then cosine decay to ~0


@pytest.mark.parametrize(("validation", "train_rows", "val_rows"), [
    ("none", 64, None), ("test", 64, 32), ("0.25", 48, 16)])
def test_validation_choices(tmp_path: Path, validation: str, train_rows: int,
                            val_rows: int | None) -> None:
    ds = load("mnist", make_dataset_dir(tmp_path))
    cfg = resolve("mnist", "cnn1", {"validation": validation})
    (x, y), val = train.split(cfg, ds)
    assert len(x) == len(y) == train_rows
    assert (val is None) if val_rows is None else (val is not None and len(val[0]) == val_rows)
    if validation == "0.25":  # Keras's validation_split: the last rows
        assert val is not None
        np.testing.assert_array_equal(val[0], ds.x_train[48:])


def test_a_validation_split_outside_0_1_is_refused(tmp_path: Path) -> None:
    ds = load("mnist", make_dataset_dir(tmp_path))
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        train.split(resolve("mnist", "cnn1", {"validation": "1.5"}), ds)


def test_training_without_validation_records_no_validation_history(tmp_path: Path) -> None:
    ds = load("mnist", make_dataset_dir(tmp_path / "data"))
    cfg = resolve("mnist", "mlp20", {"epochs": 1, "validation": "none", "optimizer": "sgd",
                                     "models_dir": tmp_path / "models"})
    result = train.train(cfg, ds)
    history = result.metadata["history"]
    assert "loss" in history and not any(k.startswith("val_") for k in history)
