"""The figure make bench writes, from the results bench/serving.py keeps."""

from __future__ import annotations

from pathlib import Path

import cv2

from bench.plot import serving_figure


def run(rate: float, p50: float) -> dict[str, float]:
    return {"requests_per_s": rate, "p50_ms": p50, "p99_ms": 2 * p50, "errors": 0}


def test_the_figure_draws_every_bar_with_the_peers_measured(tmp_path: Path) -> None:
    ours = {"c1": run(300, 3.0), "c64": run(1800, 30), "tfs_c64": run(1500, 40),
            "batched": run(50, 150), "v2_c1": run(280, 3.2), "v2_batched": run(52, 140),
            "v2_c64": run(1700, 35)}
    results = {"model": "mnist/10", "raw": {"frozen_b256_img_s": 3600, "b1_session_ms": 1.8,
                                            "onnx_b256_img_s": 3300, "onnx_b1_ms": 0.7,
                                            "onnx_one_thread_b1_ms": 0.5,
                                            "best_b1_ms": 0.5},
               "naive_c64": run(10, 900), "litserve_c64": run(800, 80),
               "triton": {"v2_c1": run(200, 5.0), "v2_c64": run(1200, 50),
                          "v2_batched": run(45, 170)},
               "ours, 2 workers": ours}
    path = tmp_path / "performance.png"
    serving_figure(results, "2 workers", path)
    picture = cv2.imread(str(path))
    assert picture is not None and picture.shape[1] > 1000


def test_the_figure_draws_every_bar(tmp_path: Path) -> None:
    ours = {"c1": run(300, 3.0), "c64": run(1800, 30), "tfs_c64": run(1500, 40),
            "batched": run(50, 150), "v2_c1": run(280, 3.2), "v2_batched": run(52, 140)}
    results = {"model": "mnist/7", "raw": {"frozen_b256_img_s": 3600, "b1_session_ms": 1.8},
               "naive_c64": run(10, 900), "litserve_c64": run(800, 80),
               "ours, 2 workers": ours}
    path = tmp_path / "img" / "performance.png"
    serving_figure(results, "2 workers", path)
    picture = cv2.imread(str(path))
    assert picture is not None and picture.shape[1] > 1000  # a wide two-panel figure
