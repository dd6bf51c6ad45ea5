"""training.captures: labelled captures become a dataset the trainer reads."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from cnnlab.captures import Capture, CaptureStore, sqlite_url
from training import captures, data


def test_labelled_captures_are_exported_as_idx_files(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "c.db")
    store = CaptureStore(url)
    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    store.add([Capture(f"r{i}", 0, time.time(), "mnist", 1, 3, 0.9, None, None, b"raw",
                       cv2.imencode(".png", p)[1].tobytes()) for i, p in enumerate(pictures)])
    store.add([Capture("other", 0, time.time(), "fashion_mnist", 1, 3, 0.9, None, None,
                       b"raw", b"png")])
    for i in range(8):  # two stay unlabelled
        store.label("mnist", f"r{i}", 0, i % 10)

    summary = captures.export(url, "mnist", tmp_path / "out")
    assert (summary["captures"], summary["train"], summary["held_out"]) == (8, 6, 2)
    ds = data.load_idx_dir("mnist", tmp_path / "out")
    assert ds.x_train.shape == (6, 28, 28, 1) and len(ds.x_test) == 2
    got = {bytes(x.tobytes()): int(y) for x, y in zip(np.concatenate([ds.x_train, ds.x_test]),
                                                       np.concatenate([ds.y_train, ds.y_test]),
                                                       strict=True)}
    assert got == {pictures[i].tobytes(): i for i in range(8)}  # the pictures, losslessly
    assert json.loads((tmp_path / "out" / "captures.json").read_text())["captures"] == 8


@pytest.mark.parametrize("seed", range(5))
def test_the_same_picture_never_straddles_the_split(tmp_path: Path, seed: int) -> None:
    """Pictures uploaded several times (here each of six pictures 1 to 4 times) are held
    out or kept whole: the held-out captures hold no picture the training split has."""
    url = sqlite_url(tmp_path / "c.db")
    store = CaptureStore(url)
    pictures = np.random.default_rng(seed).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    copies = [(i, c) for i in range(6) for c in range(1 + i % 4)]
    store.add([Capture(f"p{i}-{c}", 0, time.time(), "mnist", 1, 3, 0.9, None, None, b"raw",
                       cv2.imencode(".png", pictures[i])[1].tobytes()) for i, c in copies])
    for i, c in copies:
        store.label("mnist", f"p{i}-{c}", 0, i)

    summary = captures.export(url, "mnist", tmp_path / "out", seed=seed)
    ds = data.load_idx_dir("mnist", tmp_path / "out")
    train = {x.tobytes() for x in ds.x_train}
    test = {x.tobytes() for x in ds.x_test}
    assert train and test and not train & test
    assert summary["train"] + summary["held_out"] == len(copies)


def test_too_few_labelled_captures_are_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "c.db")
    CaptureStore(url)
    with pytest.raises(data.DataError, match="0 labelled captures"):
        captures.export(url, "mnist", tmp_path / "out")


def test_idx_files_round_trip(tmp_path: Path) -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    data.write_idx(tmp_path / "x.gz", images)
    data.write_idx(tmp_path / "y.gz", np.array([4, 2], np.uint8))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "x.gz", images=True), images)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "y.gz", images=False), [4, 2])
