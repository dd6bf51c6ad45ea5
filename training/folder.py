"""A folder of pictures as a dataset: one sub-folder per class (Keras's
``image_dataset_from_directory`` layout), pictures of any size in any format TensorFlow
decodes (PNG, JPEG, BMP, GIF, WebP), colour or grayscale.

- **Classes**: the sub-folders' names, sorted (the class index is the position).
- **Splits**: when the folder holds ``train/`` and ``test/`` (each with the class
  sub-folders), those; otherwise a seeded shuffle of each class holds out ``TEST_SHARE``
  as the test split. The validation split is cut from the training files as
  ``--validation-split`` says (a fraction or a count), by the same seeded shuffle.
- **Size and channels**: given (``--image-size``, ``--channels``), or from the data: the
  most common size among a sample of pictures (the longer side at most ``MAX_SIDE``),
  colour when any sampled picture has colour.
- **Reading**: every picture is decoded and resized (bilinear, antialiased) by the same
  TensorFlow function, to uint8. Training streams the training files from disk through
  ``tf.data`` (a folder larger than memory trains); the validation and test splits and a
  sample of at most ``FIT_SAMPLE`` training pictures (the OOD statistics are fitted on
  it) are read into memory. A picture that cannot be decoded stops the load, named; one
  first read by the stream (beyond the sample) is left out with a warning.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tensorflow as tf

from training import data
from training.config import validation_cut
from training.data import DataError, Dataset

FOLDER = "folder"            # the dataset name of a folder's models
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
TEST_SHARE = 0.15            # held out as the test split when the folder has none
MAX_SIDE = 224               # a size chosen from the data is at most this a side
SIZE_SAMPLE = 200            # pictures looked at to choose the size and channels
FIT_SAMPLE = 20_000          # training pictures read into memory for the OOD statistics


@dataclass(frozen=True)
class Files:
    """Picture files and their class indices."""

    paths: list[str]
    labels: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, rows: np.ndarray | slice) -> Files:
        index = np.arange(len(self))[rows]
        return Files([self.paths[i] for i in index], self.labels[index])


@dataclass(frozen=True)
class Stream:
    """The training files of a folder dataset, read from disk as training uses them."""

    files: Files
    height: int
    width: int
    channels: int

    def __len__(self) -> int:
        return len(self.files)

    def dataset(self, batch_size: int, classes: int, seed: int) -> tf.data.Dataset:
        """Shuffled ``(float pixels [B,H,W,C], one-hot labels)`` batches, every epoch
        in a new order, decoded in parallel with the model's step. A file that cannot be
        read or decoded is left out with a warning (training goes on): the files beyond
        ``FIT_SAMPLE`` are first read here, possibly hours into a run."""
        ds = tf.data.Dataset.from_tensor_slices(
            (self.files.paths, tf.one_hot(self.files.labels, classes)))
        ds = ds.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        read = reader(self.height, self.width, self.channels)
        return (ds.map(lambda p, y: (tf.cast(read(p), tf.float32), y),
                       num_parallel_calls=tf.data.AUTOTUNE)
                .ignore_errors(log_warning=True)
                .batch(batch_size))


def is_class_folder(root: Path) -> bool:
    """Whether ``root`` looks like a folder dataset: sub-folders holding pictures (or
    ``train/`` and ``test/`` holding those)."""
    if (root / "train").is_dir() and (root / "test").is_dir():
        root = root / "train"
    return root.is_dir() and any(_pictures(d) for d in _class_dirs(root))


def _class_dirs(root: Path) -> list[Path]:
    return sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
                  key=lambda d: d.name)


def _pictures(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in EXTENSIONS and p.is_file())


def scan(root: Path, class_names: list[str] | None = None,
         allow_empty: bool = False) -> tuple[list[str], Files]:
    """The class names and every picture file under ``root``'s class sub-folders.
    ``class_names``: the classes expected (another split's), in their order;
    ``allow_empty``: a class may have no pictures (exported captures)."""
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    dirs = _class_dirs(root)
    names = [d.name for d in dirs]
    if class_names is not None and names != class_names:
        raise DataError(f"{root}: class folders {names} differ from {class_names}")
    if len(dirs) < 2:
        raise DataError(f"{root}: needs one sub-folder of pictures per class, at least two "
                        f"(found {names or 'none'})")
    paths: list[str] = []
    labels: list[int] = []
    for k, d in enumerate(dirs):
        found = _pictures(d)
        if not found and not allow_empty:
            raise DataError(f"{d}: no pictures ({', '.join(EXTENSIONS)})")
        paths += [str(p) for p in found]
        labels += [k] * len(found)
    return names, Files(paths, np.array(labels, np.int64))


def reader(height: int, width: int, channels: int) -> tf.types.experimental.Function:
    """path -> uint8 ``[height, width, channels]``: decoded, resized (bilinear,
    antialiased: what a picture of another size becomes, in training and serving alike)."""

    @tf.function  # type: ignore[untyped-decorator]
    def read(path: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels,
                                   expand_animations=False)
        image.set_shape([None, None, channels])
        resized = tf.image.resize(image, (height, width), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    return read


def read_all(files: Files, height: int, width: int, channels: int) -> np.ndarray:
    """``files`` decoded into memory, uint8 ``[N, height, width, channels]``."""
    read = reader(height, width, channels)
    out = np.zeros((len(files), height, width, channels), np.uint8)
    ds = tf.data.Dataset.from_tensor_slices(files.paths).map(
        read, num_parallel_calls=tf.data.AUTOTUNE).batch(256)
    i = 0
    try:
        for batch in ds:
            out[i:i + len(batch)] = batch.numpy()
            i += len(batch)
    except tf.errors.InvalidArgumentError as exc:
        raise DataError(f"a picture cannot be decoded: {exc.message.splitlines()[0]}") from None
    return out


def size_of(files: Files, rng: np.random.Generator) -> tuple[int, int, int]:
    """(height, width, channels) from a sample of the pictures: their most common size
    (scaled so the longer side is at most ``MAX_SIDE``); 3 channels when any has colour."""
    sample = rng.choice(len(files), min(SIZE_SAMPLE, len(files)), replace=False)
    sizes: Counter[tuple[int, int]] = Counter()
    colour = False
    for i in sample:
        image = cv2.imread(files.paths[i], cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DataError(f"{files.paths[i]}: cannot be decoded")
        sizes[image.shape[:2]] += 1
        if image.ndim == 3 and image.shape[2] >= 3:
            b, g, r = (image[..., c].astype(np.int16) for c in range(3))
            colour = colour or bool(np.abs(b - g).max() > 8 or np.abs(g - r).max() > 8)
    (h, w), _ = sizes.most_common(1)[0]
    scale = min(1.0, MAX_SIDE / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale)), 3 if colour else 1


def _shuffled(files: Files, seed: int) -> Files:
    return files.take(np.random.default_rng(seed).permutation(len(files)))


def _held_out(files: Files, share: float, seed: int) -> tuple[Files, Files]:
    """(kept, held out): about ``share`` of each class held out, seeded."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(files), bool)
    for k in np.unique(files.labels):
        rows = rng.permutation(np.flatnonzero(files.labels == k))
        held[rows[:max(1, round(len(rows) * share))]] = True
    return files.take(np.flatnonzero(~held)), files.take(np.flatnonzero(held))


@dataclass(frozen=True)
class Loaded:
    """A folder dataset: ``dataset.x_train`` holds a sample of the training pictures then
    the validation split (``validation`` rows: what ``--validation-split`` cuts), and
    ``dataset.stream`` every training file."""

    dataset: Dataset
    validation: str
    counts: dict[str, int]


def load(root: Path, validation: str, size: tuple[int, int] | None = None,
         channels: int | None = None, seed: int = 42) -> Loaded:
    """Read the folder at ``root`` (see the module's docstring)."""
    if (root / "train").is_dir() and (root / "test").is_dir():
        names, train = scan(root / "train")
        _, test = scan(root / "test", names)
    else:
        names, every = scan(root)
        train, test = _held_out(every, TEST_SHARE, seed)
    train = _shuffled(train, seed)
    if validation in ("test", "none"):
        fit, val = train, Files([], np.zeros(0, np.int64))
    else:
        try:
            cut = validation_cut(len(train), validation)
        except ValueError as exc:
            raise DataError(f"--validation-split: {exc}") from None
        fit, val = train.take(slice(None, cut)), train.take(slice(cut, None))
    rng = np.random.default_rng(seed)
    h, w, c = size_of(train, rng) if size is None or channels is None else (*size, channels)
    if size is not None:
        h, w = size
    if channels is not None:
        c = channels
    sample = fit.take(slice(None, FIT_SAMPLE))
    x_train = read_all(Files(sample.paths + val.paths,
                             np.concatenate([sample.labels, val.labels])), h, w, c)
    dataset = Dataset(name=FOLDER, x_train=x_train,
                      y_train=np.concatenate([sample.labels, val.labels]),
                      x_test=read_all(test, h, w, c), y_test=test.labels,
                      classes=tuple(names), stream=Stream(fit, h, w, c))
    held = (validation if validation in ("test", "none") else
             str(len(val)) if len(val) else "none")
    return Loaded(dataset, held, {"train": len(fit), "validation": len(val),
                                  "test": len(test)})


def extra(root: Path, ds: Dataset) -> tuple[Files, np.ndarray, np.ndarray]:
    """A folder of extra pictures for ``ds``'s classes (exported captures: ``train/`` and
    ``test/`` with a sub-folder per class, some may be empty): its training files, and
    its test split read into memory (``[N,H,W,C]``, labels)."""
    s = ds.stream
    if not isinstance(s, Stream):
        raise DataError("extra pictures in class folders go with a folder dataset")
    names = ds.class_names
    _, train = scan(root / "train", names, allow_empty=True)
    _, test = scan(root / "test", names, allow_empty=True)
    return train, read_all(test, s.height, s.width, s.channels), test.labels


def with_extra(ds: Dataset, files: Files) -> Dataset:
    """``ds`` with ``files`` streamed beside its training files."""
    s = ds.stream
    assert isinstance(s, Stream)
    joined = Files(s.files.paths + files.paths, np.concatenate([s.files.labels, files.labels]))
    return replace(ds, stream=Stream(joined, s.height, s.width, s.channels))


def of_version(meta: dict[str, Any], data_dir: Path | None) -> tuple[Dataset, str]:
    """The dataset a version was trained on and its validation setting: a built-in one
    (IDX files in ``data_dir``, or Keras's download), or its folder (``data_dir``, else the
    one it recorded) read again as it was: the same seeded split, at its input's size."""
    hyper = meta.get("hyperparameters", {})
    validation = str(hyper.get("validation", "test"))
    if meta.get("dataset") != FOLDER:
        return data.load(meta["dataset"], data_dir), validation
    root = data_dir or (Path(hyper["data_dir"]) if hyper.get("data_dir") else None)
    if root is None or not is_class_folder(root):
        raise DataError(f"{root}: the version's folder of pictures is not there; pass "
                        "--data-dir")
    h, w, c = meta["input_shape"]
    loaded = load(root, validation, (h, w), c, int(hyper.get("seed", 42)))
    if loaded.dataset.class_names != meta["class_names"]:
        raise DataError(f"{root}: classes {loaded.dataset.class_names} differ from the "
                        f"version's {meta['class_names']}")
    return loaded.dataset, loaded.validation
