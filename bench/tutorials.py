"""Reproduce the tutorials' architectures with the training CLI and print the README table.

  python bench/tutorials.py --data-dir ../shared/datasets [--models-dir /tmp/tutorial-models]

Each architecture is trained with its tutorial's own hyperparameters (the defaults in
training/config.py: epochs, optimizer, batch size, validation) into a scratch models
directory, not the bundled repository. Takes about 40 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (arch, dataset, extra CLI flags, tutorial, the tutorial's published figure)
RUNS = [
    ("mlp20", "mnist", [], "000", "~95 % validation (95.57 % test)"),
    ("dense128", "fashion_mnist", [], "003", "87.69 % test"),
    ("cnn1", "mnist", [], "000", "97.8 % test"),
    ("cnn2", "mnist", [], "000", "not published (the notebook re-evaluates model1)"),
    ("conv1", "mnist", ["--stop-at-accuracy", "0.998"], "001",
     "99.8 % training accuracy within 20 epochs"),
    ("fashion_cnn", "fashion_mnist", [], "003/004", "91.37 % test"),
    ("keras_mnist_cnn", "mnist", [], "002", "99.15 % test"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--models-dir", type=Path, default=Path("/tmp/tutorial-models"))
    ap.add_argument("--only", nargs="*", help="a subset of architectures")
    args = ap.parse_args()
    rows = []
    for arch, dataset, extra, tutorial, published in RUNS:
        if args.only and arch not in args.only:
            continue
        name = f"{arch}-{dataset}"
        cmd = [sys.executable, "-m", "training", "train", dataset, "--arch", arch,
               "--data-dir", str(args.data_dir), "--models-dir", str(args.models_dir),
               "--name", name, *extra]
        print(f"$ {' '.join(cmd[1:])}", flush=True)
        started = time.monotonic()
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        version = max(int(p.name) for p in (args.models_dir / name).iterdir()
                      if p.name.isdigit())
        m = json.loads((args.models_dir / name / str(version) / "metadata.json").read_text())
        hp = m["hyperparameters"]
        hist = m["history"]
        row = {
            "arch": arch, "dataset": dataset, "tutorial": tutorial, "published": published,
            "test_accuracy": m["test_accuracy"], "epochs_run": m["epochs_run"],
            "final_train_accuracy": hist["accuracy"][-1],
            "final_val_accuracy": hist.get("val_accuracy", [None])[-1],
            "optimizer": hp["optimizer"], "learning_rate": hp["learning_rate"],
            "batch_size": hp["batch_size"], "validation": hp["validation"],
            "seconds": round(time.monotonic() - started),
            "command": f"python -m training train {dataset} --arch {arch} "
                       + " ".join(extra) + " --data-dir DATA",
        }
        rows.append(row)
        print(f"  test accuracy {row['test_accuracy']:.4f} after {row['epochs_run']} epochs "
              f"({row['seconds']} s)", flush=True)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "tutorials.json").write_text(json.dumps(rows, indent=2))
    print("\n| arch | data | tutorial's figure | measured here (test) | epochs | optimizer, batch "
          "| validation |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        extra_note = ""
        if r["arch"] == "conv1":
            extra_note = f"; stopped at {r['final_train_accuracy']:.2%} training accuracy"
        if r["arch"] == "mlp20" and r["final_val_accuracy"] is not None:
            extra_note = f"; {r['final_val_accuracy']:.2%} validation"
        lr = f" {r['learning_rate']}" if r["learning_rate"] else ""
        print(f"| {r['arch']} | {r['dataset']} | {r['published']} | "
              f"{r['test_accuracy']:.2%}{extra_note} | {r['epochs_run']} | "
              f"{r['optimizer']}{lr}, {r['batch_size']} | {r['validation']} |")


if __name__ == "__main__":
    main()
