"""bench/ood_cost.py's graph cut to its probabilities: the same probabilities as the
served graph, from fewer nodes; and its split of the served graph's time by operator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from bench.ood_cost import PROBABILITIES, SERVED, probabilities_only, time_by_operator
from cnnlab.layout import ONNX_FILE
from service.serving.onnx_runner import OnnxRunner
from tests.helpers import dim_pictures, export_tiny
from training import onnx_export


def test_the_cut_graph_gives_the_served_probabilities_from_fewer_nodes(
        tmp_path: Path) -> None:
    version = export_tiny(tmp_path / "tiny", version=1, seed=3, trusted=True)
    onnx_export.write(version, dim_pictures(32, 9))
    cut = probabilities_only(version / ONNX_FILE, tmp_path / "cut.onnx")

    served_graph, cut_graph = onnx.load(version / ONNX_FILE), onnx.load(cut)
    assert [o.name for o in cut_graph.graph.output] == [PROBABILITIES]
    assert len(cut_graph.graph.node) < len(served_graph.graph.node)
    x = dim_pictures(8, 4)
    served = OnnxRunner(version / ONNX_FILE, SERVED, "uint8", 1)(x)
    alone = OnnxRunner(cut, [PROBABILITIES], "uint8", 1)(x)
    np.testing.assert_array_equal(alone[PROBABILITIES], served[PROBABILITIES])

    shares = time_by_operator(version / ONNX_FILE, x, tmp_path, calls=2)
    assert "Conv" in shares and abs(sum(shares.values()) - 1) < 1e-6
