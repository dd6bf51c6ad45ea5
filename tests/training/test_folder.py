"""Folder datasets: classes from the sub-folders, seeded splits, size and channels from the
pictures, and training files streamed from disk."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import SHAPES, shapes_folder
from training import cli, folder
from training.data import DataError


def test_classes_splits_and_size_come_from_the_folder(tmp_path: Path) -> None:
    root = shapes_folder(tmp_path / "shapes", per_class=20, size=40)
    loaded = folder.load(root, "0.25")
    ds = loaded.dataset
    assert ds.class_names == list(SHAPES) and ds.name == "folder"
    assert ds.x_test.shape[1:] == (40, 40, 3)  # the pictures' size, in colour
    # 15 % of each class held out as the test split (3 of 20), the last quarter of the
    # rest (int(51 * 0.75) = 38 train, as Keras cuts) as validation
    assert loaded.counts == {"train": 38, "validation": 13, "test": 9}
    assert loaded.validation == "13" and len(ds.x_train) == 38 + 13
    assert np.bincount(ds.y_test).tolist() == [3, 3, 3]
    again = folder.load(root, "0.25")  # seeded: the same files on the same side
    assert again.dataset.stream is not None and ds.stream is not None
    assert again.dataset.stream.files.paths == ds.stream.files.paths
    other = folder.load(root, "0.25", seed=7)
    assert other.dataset.stream is not None
    assert other.dataset.stream.files.paths != ds.stream.files.paths


def test_train_and_test_sub_folders_are_kept(tmp_path: Path) -> None:
    shapes_folder(tmp_path / "data" / "train", per_class=6, size=24)
    shapes_folder(tmp_path / "data" / "test", per_class=2, size=24, seed=1)
    loaded = folder.load(tmp_path / "data", "none")
    assert loaded.counts == {"train": 18, "validation": 0, "test": 6}
    assert loaded.validation == "none"


def test_grayscale_pictures_of_mixed_sizes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for k in ("a", "b"):
        (tmp_path / k).mkdir()
        for i in range(5):
            h, w = (30, 20) if i else (50, 50)  # four of five are 30x20
            cv2.imwrite(str(tmp_path / k / f"{i}.png"), rng.integers(0, 256, (h, w), np.uint8))
    ds = folder.load(tmp_path, "none").dataset
    assert ds.x_test.shape[1:] == (30, 20, 1)
    big = folder.load(tmp_path, "none", size=(300, 600), channels=3).dataset
    assert big.x_test.shape[1:] == (300, 600, 3)  # given: taken as it is


def test_a_large_picture_size_is_capped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for k in ("a", "b"):
        (tmp_path / k).mkdir()
        for i in range(2):
            cv2.imwrite(str(tmp_path / k / f"{i}.jpg"),
                        rng.integers(0, 256, (600, 300, 3), np.uint8))
    assert folder.load(tmp_path, "none").dataset.x_test.shape[1:] == (224, 112, 3)


def test_the_stream_reads_every_training_file_each_epoch(tmp_path: Path) -> None:
    root = shapes_folder(tmp_path / "shapes", per_class=10, size=32)
    ds = folder.load(root, "none").dataset
    assert ds.stream is not None
    batches = list(ds.stream.dataset(batch_size=8, classes=3, seed=0))
    x = np.concatenate([b[0].numpy() for b in batches])
    y = np.concatenate([b[1].numpy() for b in batches])
    assert x.shape == (len(ds.stream), 32, 32, 3) and x.dtype == np.float32
    assert y.sum(axis=0).tolist() == np.bincount(ds.stream.files.labels).tolist()
    # the same pictures as read into memory, in another order
    memory = folder.read_all(ds.stream.files, 32, 32, 3).astype(np.float32)
    assert sorted(x.sum(axis=(1, 2, 3)).tolist()) == sorted(memory.sum(axis=(1, 2, 3)).tolist())


def test_the_stream_leaves_out_a_file_it_cannot_decode(tmp_path: Path) -> None:
    root = shapes_folder(tmp_path / "shapes", per_class=4, size=16)
    stream = folder.load(root, "none", size=(16, 16), channels=3).dataset.stream
    assert stream is not None
    broken = root / "circle" / "broken.png"  # appears after the load, as on a shared disk
    broken.write_bytes(b"\x89PNG not really")
    files = folder.Files([*stream.files.paths, str(broken)],
                         np.append(stream.files.labels, 0))
    with_broken = folder.Stream(files, 16, 16, 3)
    batches = list(with_broken.dataset(batch_size=5, classes=3, seed=0))
    assert sum(len(b[0]) for b in batches) == len(stream)  # every good file, once


@pytest.mark.parametrize(("layout", "needle"), [
    ({"only": 3}, "at least two"),
    ({"a": 2, "b": 0}, "no pictures"),
])
def test_a_folder_that_is_not_a_dataset_is_refused(tmp_path: Path, layout: dict[str, int],
                                                   needle: str) -> None:
    for name, n in layout.items():
        (tmp_path / name).mkdir()
        for i in range(n):
            cv2.imwrite(str(tmp_path / name / f"{i}.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=needle):
        folder.load(tmp_path, "none")


def test_an_unreadable_picture_is_named(tmp_path: Path) -> None:
    root = shapes_folder(tmp_path / "shapes", per_class=3, size=16)
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="cannot be decoded"):
        folder.load(root, "none", size=(16, 16), channels=3)


@pytest.mark.parametrize(("argv", "needle"), [
    (["train", "cifar"], "unknown dataset 'cifar'"),
    (["train"], "name a dataset"),
    (["train", "folder:/nonexistent/place"], "not a folder with one sub-folder"),
])
def test_the_cli_names_a_bad_dataset(argv: list[str], needle: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) != 0
    assert needle in capsys.readouterr().err


def test_the_cli_refuses_a_bad_image_size(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["train", "--image-size", "2x2000"])
    assert "each side must be 4..1024" in capsys.readouterr().err
