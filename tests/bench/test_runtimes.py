"""bench/runtimes.py: both runtimes timed as ``runtime=auto`` times them at load."""

from __future__ import annotations

from pathlib import Path

from bench.runtimes import compare
from tests.helpers import dim_pictures, export_tiny
from training import onnx_export


def test_both_runtimes_are_timed_for_a_picture_and_a_full_call(tmp_path: Path) -> None:
    version = export_tiny(tmp_path / "tiny", version=1, seed=3, trusted=True)
    onnx_export.write(version, dim_pictures(32, 9))
    times = compare(version, 1, rounds=2)
    assert sorted(times) == ["onnxruntime", "tensorflow"]
    for timing in times.values():
        assert timing.call_images == 64  # as many 28 x 28 pictures as a call holds
        assert 0 < timing.one_ms < timing.call_ms
