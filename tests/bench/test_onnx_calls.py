"""bench/onnx_calls.py: a served graph timed in calls of a given size, with the memory
its session keeps."""

from __future__ import annotations

from pathlib import Path

from bench.common import synthetic
from bench.onnx_calls import measure
from cnnlab.layout import ONNX_CHECK_FILE, ONNX_FILE
from tests.helpers import dim_pictures, export_tiny
from training import onnx_export


def test_a_graph_is_timed_in_calls_of_the_size_asked(tmp_path: Path) -> None:
    version = export_tiny(tmp_path / "tiny", version=1, seed=3, trusted=True)
    onnx_export.write(version, dim_pictures(32, 9))
    rate, kept = measure(version / ONNX_FILE, 1, 16, dim_pictures(8, 4), seconds=0.2)
    assert rate > 256 / 0.2 / 1000  # at least a few 256-image batches a second
    assert 0 <= kept < 2**30


def test_a_synthetic_colour_cnn_of_any_side_is_exported_and_timed(tmp_path: Path) -> None:
    import numpy as np

    version = synthetic(20, tmp_path / "version")
    pictures = np.load(version / ONNX_CHECK_FILE)
    assert pictures.shape[1:] == (20, 20, 3)
    rate, _ = measure(version / ONNX_FILE, 1, 4, pictures, seconds=0.2)
    assert rate > 0
