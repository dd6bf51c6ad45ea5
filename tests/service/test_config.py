"""Settings: the number of worker processes, and TensorFlow's thread pools that follow it."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from service.config import Settings


def test_one_worker_leaves_the_thread_pools_to_tensorflow() -> None:
    assert Settings(workers=1).tf_threads() == (0, 0)


def test_workers_split_the_cores_between_them() -> None:
    cores = len(os.sched_getaffinity(0))
    assert Settings(workers=2).tf_threads() == (max(1, cores // 2),) * 2
    assert Settings(workers=cores * 4).tf_threads() == (1, 1)  # never below one thread


def test_explicit_thread_counts_win() -> None:
    assert Settings(workers=2, tf_intra_op_threads=3, tf_inter_op_threads=2).tf_threads() \
        == (3, 2)


def test_auto_workers_means_one_per_usable_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_WORKERS", "auto")
    assert Settings().workers == len(os.sched_getaffinity(0))
    monkeypatch.setenv("CNNLAB_WORKERS", "0")
    with pytest.raises(ValidationError):
        Settings()
