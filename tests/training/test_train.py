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
    ("none", 64, None), ("test", 64, 32), ("0.25", 48, 16), ("16", 48, 16)])
def test_validation_choices(tmp_path: Path, validation: str, train_rows: int,
                            val_rows: int | None) -> None:
    ds = load("mnist", make_dataset_dir(tmp_path))
    cfg = resolve("mnist", "cnn1", {"validation": validation})
    (x, y), val = train.split(cfg, ds)
    assert len(x) == len(y) == train_rows
    assert (val is None) if val_rows is None else (val is not None and len(val[0]) == val_rows)
    if validation in ("0.25", "16"):  # Keras's validation_split: the last rows
        assert val is not None
        np.testing.assert_array_equal(val[0], ds.x_train[48:])


@pytest.mark.parametrize("validation", ["1.5", "64", "0", "-3", "half"])
def test_a_validation_split_that_is_no_share_or_count_of_the_rows_is_refused(
        tmp_path: Path, validation: str) -> None:
    ds = load("mnist", make_dataset_dir(tmp_path))  # 64 training rows
    with pytest.raises(ValueError, match="in \\(0, 1\\), a number of images below 64"):
        train.split(resolve("mnist", "cnn1", {"validation": validation}), ds)


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_a_share_of_training_pictures_is_swapped_for_their_copies_as_sent(
        share: float) -> None:
    """Each picture of a batch comes from the copies as sent with probability ``share``:
    never, about half the time, always."""
    x = np.zeros((512, 28, 28, 1), np.uint8)
    copies = np.full_like(x, 255)
    cfg = resolve("mnist", "cnn1", {"as_sent": share, "augment": False})
    batches = list(train.pipeline(x, np.zeros(512, int), cfg, 10, training=True,
                                  batch_size=128, sent_x=copies))
    swapped = np.concatenate([b[0].numpy().max(axis=(1, 2, 3)) == 255 for b in batches])
    assert len(swapped) == 512
    if share in (0.0, 1.0):
        assert swapped.all() == bool(share) and swapped.any() == bool(share)
    else:
        assert 0.4 < swapped.mean() < 0.6


def test_training_without_validation_records_no_validation_history(tmp_path: Path) -> None:
    ds = load("mnist", make_dataset_dir(tmp_path / "data"))
    cfg = resolve("mnist", "mlp20", {"epochs": 1, "validation": "none", "optimizer": "sgd",
                                     "models_dir": tmp_path / "models"})
    result = train.train(cfg, ds)
    history = result.metadata["history"]
    assert "loss" in history and not any(k.startswith("val_") for k in history)
