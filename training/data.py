"""Datasets: MNIST and Fashion-MNIST as uint8 arrays ``[N, 28, 28, 1]`` plus int labels.

With a data directory the four standard IDX ``.gz`` files are read directly (the files
Keras caches and Debian's ``dataset-fashion-mnist`` installs); without one, Keras's own
downloader is used. Every failure is a :class:`DataError` whose message names the file.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

DATASETS = ("mnist", "fashion_mnist")

CLASS_NAMES: dict[str, list[str]] = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
}

# Folder names the datasets are commonly kept under (ours, Keras's, Debian's).
_SUBDIRS = {"mnist": ("mnist",), "fashion_mnist": ("fashion-mnist", "fashion_mnist")}

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension


class DataError(Exception):
    """A dataset could not be read; the message names the file and what is wrong."""


class Stream(Protocol):
    """Training pictures read from disk as training uses them (``training.folder``)."""

    @property
    def height(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def channels(self) -> int: ...

    def __len__(self) -> int: ...

    def dataset(self, batch_size: int, classes: int, seed: int) -> Any:
        """Shuffled ``(float pixels, one-hot labels)`` batches (a ``tf.data.Dataset``)."""


@dataclass(frozen=True)
class Dataset:
    """Train and test splits; images uint8 ``[N, H, W, C]`` (28x28x1 for the built-in
    datasets), labels int64 ``[N]``. A folder dataset (``training.folder``) names its own
    classes and streams its training files (``stream``); its ``x_train`` holds a sample
    of them, then its validation split."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...] | None = None
    stream: Stream | None = None

    @property
    def class_names(self) -> list[str]:
        return list(self.classes) if self.classes else CLASS_NAMES[self.name]


def read_idx(path: Path, *, images: bool) -> np.ndarray:
    """Read one IDX file (gzip or plain), checking magic number and size."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:  # truncated gzip raises EOFError
        raise DataError(f"{path}: cannot read ({exc})") from None
    want_magic, ndim = (_IMAGES_MAGIC, 3) if images else (_LABELS_MAGIC, 1)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != want_magic:
        kind = "images" if images else "labels"
        raise DataError(f"{path}: not an IDX {kind} file (magic {magic:#010x})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: truncated or padded: header says {dims} "
            f"({expected} bytes), file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write uint8 ``array`` (``[N,H,W]`` images or ``[N]`` labels) as a gzipped IDX file,
    the format ``read_idx`` reads."""
    data = np.ascontiguousarray(array, dtype=np.uint8)
    magic = _IMAGES_MAGIC if data.ndim == 3 else _LABELS_MAGIC
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(f">I{data.ndim}I", magic, *data.shape))
        f.write(data.tobytes())


def write_idx_dir(folder: Path, x_train: np.ndarray, y_train: np.ndarray,
                  x_test: np.ndarray, y_test: np.ndarray) -> None:
    """The four IDX files of a dataset in ``folder`` (images ``[N,28,28(,1)]``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in (("x_train", x_train), ("y_train", y_train), ("x_test", x_test),
                       ("y_test", y_test)):
        write_idx(folder / IDX_FILES[key], array.reshape(array.shape[:3]) if key[0] == "x"
                  else array)


def _resolve_dir(data_dir: Path, name: str) -> Path:
    """Accept the dataset folder itself or a parent holding ``mnist/``/``fashion-mnist/``."""
    if (data_dir / IDX_FILES["x_train"]).exists():
        return data_dir
    for sub in _SUBDIRS[name]:
        if (data_dir / sub / IDX_FILES["x_train"]).exists():
            return data_dir / sub
    return data_dir


def load_idx_dir(name: str, data_dir: Path) -> Dataset:
    """Load a dataset from a directory of the four IDX ``.gz`` files."""
    folder = _resolve_dir(data_dir, name)
    arrays = {
        key: read_idx(folder / fname, images=key.startswith("x"))
        for key, fname in IDX_FILES.items()
    }
    for split in ("train", "test"):
        n_x, n_y = len(arrays[f"x_{split}"]), len(arrays[f"y_{split}"])
        if n_x != n_y:
            raise DataError(
                f"{folder / IDX_FILES['y_' + split]}: {n_y} labels for {n_x} images"
            )
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(f"{folder / IDX_FILES['x_test']}: image size differs from training set")
    return _make(name, arrays)


def load_keras(name: str) -> Dataset:
    """Load through Keras's downloader (needs internet the first time)."""
    import keras

    module = keras.datasets.mnist if name == "mnist" else keras.datasets.fashion_mnist
    try:
        (x_train, y_train), (x_test, y_test) = module.load_data()
    except Exception as exc:  # network errors come in many types; one line is enough
        raise DataError(
            f"Keras could not download {name} ({type(exc).__name__}: {exc}); "
            "pass --data-dir with the four IDX .gz files"
        ) from None
    return _make(name, {"x_train": x_train, "y_train": y_train,
                        "x_test": x_test, "y_test": y_test})


def load(name: str, data_dir: Path | None = None) -> Dataset:
    """Load ``name`` from ``data_dir`` if given, else through Keras."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return load_idx_dir(name, data_dir) if data_dir is not None else load_keras(name)


def _make(name: str, arrays: dict[str, np.ndarray]) -> Dataset:
    def images(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.reshape(*a.shape[:3], 1).astype(np.uint8))

    return Dataset(
        name=name,
        x_train=images(arrays["x_train"]),
        y_train=arrays["y_train"].astype(np.int64),
        x_test=images(arrays["x_test"]),
        y_test=arrays["y_test"].astype(np.int64),
    )
