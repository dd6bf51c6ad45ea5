from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT
from training import data


def write_idx(path: Path, arr: np.ndarray) -> None:
    magic = 0x0803 if arr.ndim == 3 else 0x0801
    header = struct.pack(f">I{arr.ndim}I", magic, *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def make_dataset_dir(folder: Path, n_train: int = 64, n_test: int = 32, seed: int = 0) -> Path:
    """Four IDX .gz files with a learnable toy task (class = brightness bucket)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = (labels[:, None, None] * 25 + rng.integers(0, 5, (n, 28, 28))).astype(np.uint8)
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    return folder


def test_reads_the_four_idx_files(tmp_path: Path) -> None:
    ds = data.load("mnist", make_dataset_dir(tmp_path / "mnist"))
    assert ds.x_train.shape == (64, 28, 28, 1)
    assert ds.x_test.dtype == np.uint8
    assert ds.y_train.shape == (64,)


def test_accepts_a_parent_folder_holding_the_dataset(tmp_path: Path) -> None:
    make_dataset_dir(tmp_path / "fashion-mnist")
    assert data.load("fashion_mnist", tmp_path).class_names[9] == "Ankle boot"


def test_missing_file_is_named(tmp_path: Path) -> None:
    folder = make_dataset_dir(tmp_path / "mnist")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz: file not found"):
        data.load("mnist", folder)


def test_truncated_file_is_named(tmp_path: Path) -> None:
    folder = make_dataset_dir(tmp_path / "mnist")
    path = folder / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    with gzip.open(path, "wb") as f:
        f.write(raw[:-100])
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte.gz: truncated"):
        data.load("mnist", folder)


def test_corrupt_gzip_is_named(tmp_path: Path) -> None:
    folder = make_dataset_dir(tmp_path / "mnist")
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(data.DataError, match="train-labels-idx1-ubyte.gz: cannot read"):
        data.load("mnist", folder)


def test_labels_file_in_place_of_images_is_refused(tmp_path: Path) -> None:
    folder = make_dataset_dir(tmp_path / "mnist")
    (folder / "train-images-idx3-ubyte.gz").write_bytes(
        (folder / "train-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(data.DataError, match="not an IDX images file"):
        data.load("mnist", folder)


def test_mismatched_counts_are_refused(tmp_path: Path) -> None:
    folder = make_dataset_dir(tmp_path / "mnist")
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(10, np.uint8))
    with pytest.raises(data.DataError, match="10 labels for 64 images"):
        data.load("mnist", folder)


def test_cli_prints_one_line_error_not_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training", "train", "mnist", "--data-dir", str(tmp_path),
         "--models-dir", str(tmp_path / "m")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tmp_path}/train-images-idx3-ubyte.gz: file not found"]
