"""Captured uploads (``service.capture``) as a dataset the trainer reads.

``export`` takes a model's labelled captures — the 28x28 pictures the model saw and the
true classes feedback gave them — and writes them as the four IDX files of a dataset:
about ``HELD_OUT`` of them, chosen at random by picture (the same picture uploaded
twice lands on one side only, so the test split holds no picture the training saw), as
its test split, to measure a fine-tuned version on
traffic it did not learn from, the rest as its training split, which
``python -m training train ... --extra-data DIR`` mixes into the original training set.
A folder model's captures (colour or any size) are written as its training folder is
laid out instead: ``train/`` and ``test/``, one sub-folder of PNGs per class.
``captures.json`` beside them says what they are.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cnnlab.captures import CaptureStore
from training.data import DataError, write_idx_dir

HELD_OUT = 0.2
SUMMARY = "captures.json"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def export(store_url: str, model: str, to: Path, seed: int = 0,
           class_names: list[str] | None = None) -> dict[str, Any]:
    """Write ``model``'s labelled captures from the store at ``store_url`` into ``to``
    (IDX files, or with ``class_names`` class folders of PNGs); returns (and writes as
    ``captures.json``) their counts and date range."""
    store = CaptureStore(store_url)
    try:
        rows = list(store.labelled(model))
    finally:
        store.close()
    if len(rows) < 2:
        raise DataError(f"model {model!r} has {len(rows)} labelled captures in {store_url}; "
                        "at least 2 are needed (one to learn from, one to test on)")
    pictures = np.stack([_picture(png, colour=class_names is not None) for png, _, _ in rows])
    labels = np.array([label for _, label, _ in rows], np.uint8)
    test, train = split_by_picture(pictures, HELD_OUT, seed)
    if class_names is None:
        write_idx_dir(to, pictures[train], labels[train], pictures[test], labels[test])
    else:
        write_class_folders(to, class_names, {"train": train, "test": test}, pictures, labels)
    times = [t for _, _, t in rows]
    summary = {"model": model, "captures": len(rows), "train": len(train),
               "held_out": len(test), "first": _iso(min(times)), "last": _iso(max(times)),
               "store": store.engine.url.render_as_string(hide_password=True)}
    (to / SUMMARY).write_text(json.dumps(summary, indent=2))
    return summary


def split_by_picture(pictures: np.ndarray, share: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (held out, kept) with about ``share`` of the rows held out, whole
    groups of identical pictures at a time, the groups in a seeded random order."""
    _, group = np.unique(pictures.reshape(len(pictures), -1), axis=0, return_inverse=True)
    group = group.ravel()
    if group.max() < 1:
        raise DataError("every labelled capture is the same picture: nothing to hold out "
                        "that the training would not also see")
    wanted = max(1, round(len(pictures) * share))
    held: list[int] = []
    for g in np.random.default_rng(seed).permutation(group.max() + 1):
        if len(held) >= wanted:
            break
        members = np.flatnonzero(group == g)
        if len(held) + len(members) < len(pictures):  # (the training keeps one at least)
            held.extend(members.tolist())
    out = np.isin(np.arange(len(pictures)), held)
    return np.flatnonzero(out), np.flatnonzero(~out)


def write_class_folders(to: Path, class_names: list[str], splits: dict[str, np.ndarray],
                        pictures: np.ndarray, labels: np.ndarray) -> None:
    """``to/<split>/<class>/<row>.png`` for every split's rows (every class's folder made,
    empty or not, so the folders name the model's classes)."""
    for split, rows in splits.items():
        for name in class_names:
            (to / split / name).mkdir(parents=True, exist_ok=True)
        for row in rows:
            if labels[row] >= len(class_names):
                raise DataError(f"a capture is labelled {labels[row]}; the model has "
                                f"{len(class_names)} classes")
            cv2.imwrite(str(to / split / class_names[labels[row]] / f"{row}.png"),
                        pictures[row])


def _picture(png: bytes, colour: bool = False) -> np.ndarray:
    """A capture's picture: grayscale, or as stored (grayscale or BGR) with ``colour``."""
    flag = cv2.IMREAD_UNCHANGED if colour else cv2.IMREAD_GRAYSCALE
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), flag)
    if picture is None:
        raise DataError("a capture's picture is not a readable PNG")
    return picture


def read_summary(folder: Path) -> dict[str, Any]:
    """The ``captures.json`` of an exported folder (empty when it is another dataset)."""
    path = folder / SUMMARY
    return json.loads(path.read_text()) if path.is_file() else {}
