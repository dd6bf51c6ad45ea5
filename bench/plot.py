"""The figure ``make bench`` writes beside docs/performance.md: this service's rates against
the model's in-process limit and the peers, measured in the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt


def serving_figure(results: dict[str, Any], default: str, path: Path) -> None:
    """Images a second (left) and single-image latency (right) of ``bench/serving.py``'s
    run: the in-process limits (the frozen graph in a Session, ONNX Runtime), this service
    (``default`` workers), and the peers on the same bodies (Triton when measured)."""
    ours = results[f"ours, {default}"]
    raw = results["raw"]
    triton = results.get("triton")
    onnx_rate = ([("ONNX Runtime,\nbatch 256 (limit)", raw["onnx_b256_img_s"], "#2e7d32")]
                 if "onnx_b256_img_s" in raw else [])
    # the fastest runtime in its fastest thread setting (bench/serving.py's raw_limit)
    onnx_latency = ([("fastest runtime,\nbatch 1 (limit)", raw["best_b1_ms"], "#2e7d32")]
                    if "onnx_b1_ms" in raw else [])
    triton_rates = ([("Triton: V2 JSON 64\nimages, c=8",
                      64 * triton["v2_batched"]["requests_per_s"], "#757575"),
                     ("Triton: V2 JSON\none image, c=64", triton["v2_c64"]["requests_per_s"],
                      "#757575")] if triton else [])
    triton_latency = ([("Triton: V2 JSON one\nat a time, p50", triton["v2_c1"]["p50_ms"],
                        "#757575")] if triton else [])
    rates = [
        ("frozen graph,\nbatch 256 (limit)", raw["frozen_b256_img_s"], "#2e7d32"),
        *onnx_rate,
        ("ours: 64 images\na request, c=8", 64 * ours["batched"]["requests_per_s"], "#1565c0"),
        ("ours: V2 JSON 64\nimages, c=8", 64 * ours["v2_batched"]["requests_per_s"], "#1565c0"),
        ("ours: single\nupload, c=64", ours["c64"]["requests_per_s"], "#1565c0"),
        *([("ours: V2 JSON\none image, c=64", ours["v2_c64"]["requests_per_s"], "#1565c0")]
          if "v2_c64" in ours else []),
        ("ours: TF Serving\nJSON, c=64", ours["tfs_c64"]["requests_per_s"], "#1565c0"),
        *triton_rates,
        ("LitServe: same\nJSON, c=64", results["litserve_c64"]["requests_per_s"], "#757575"),
        ("naive FastAPI +\nmodel.predict, c=64", results["naive_c64"]["requests_per_s"],
         "#757575"),
    ]
    latency = [
        ("frozen graph,\nbatch 1 (limit)", raw["b1_session_ms"], "#2e7d32"),
        *onnx_latency,
        ("ours: one upload\nat a time, p50", ours["c1"]["p50_ms"], "#1565c0"),
        ("ours: V2 JSON one\nat a time, p50", ours["v2_c1"]["p50_ms"], "#1565c0"),
        *triton_latency,
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.6),
                                      gridspec_kw={"width_ratios": [2.4, 1]})
    for axis, rows, unit in ((left, rates, "images a second"), (right, latency, "ms")):
        names = [r[0] for r in rows]
        values = [r[1] for r in rows]
        bars = axis.barh(names, values, color=[r[2] for r in rows])
        axis.bar_label(bars, labels=[f"{v:,.0f}" if unit != "ms" else f"{v:.2f}"
                                     for v in values], padding=3, fontsize=8)
        axis.invert_yaxis()
        axis.set_xlabel(unit)
        axis.tick_params(axis="y", labelsize=8)
        axis.set_xlim(0, max(values) * 1.2)
    left.set_title(f"throughput, {results['model']}, {default}", fontsize=10)
    right.set_title("latency of a lone request", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
