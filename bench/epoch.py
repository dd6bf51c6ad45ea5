"""One training epoch on the real data: NumPy arrays fed to ``fit`` against the ``tf.data``
pipeline that ``python -m training train`` uses, with and without augmentation.

    python bench/epoch.py --data-dir DIR [--dataset mnist] [--arch best] [--rounds 2]

Arrays: ``model.fit(x, y, batch_size, shuffle=True)`` on float32 images, augmentation (when
on) as layers in front of the model, so it runs inside each training step. Pipeline:
``training.train.pipeline`` (shuffle, batch, cast, augment in parallel map calls, prefetch),
so the next batch is prepared while the model trains on this one. Each variant starts from
the same initial weights and pays its own tracing once in a short warm-up fit first; the
variants then alternate, epoch by epoch, and the best epoch of each is compared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
import numpy as np
import tensorflow as tf

from training import architectures, data
from training.config import resolve
from training.train import augmenter, pipeline


def _model(arch: str, shape: tuple[int, int, int], k: int,
           augment: keras.Sequential | None) -> keras.Model:
    keras.utils.set_random_seed(0)
    net = architectures.build(arch, shape, k)
    model = net if augment is None else keras.Sequential(
        [keras.Input(shape), augment, net])  # augmentation inside the training step
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def epoch_seconds(model: keras.Model, *inputs: Any, **options: Any) -> float:
    """Wall time of one ``model.fit`` epoch over ``inputs``."""
    started = time.perf_counter()
    model.fit(*inputs, epochs=1, verbose=0, **options)
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--dataset", default="mnist", choices=data.DATASETS)
    ap.add_argument("--arch", default="best", choices=architectures.names())
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2, help="epochs of each variant, alternated")
    args = ap.parse_args()

    ds = data.load(args.dataset, args.data_dir)
    k = len(ds.class_names)
    h, w, c = (int(d) for d in ds.x_train.shape[1:])
    shape = (h, w, c)
    x = ds.x_train.astype(np.float32)
    y = keras.utils.to_categorical(ds.y_train, k)
    print(f"{args.arch} on {args.dataset}: {len(x):,} images per epoch, batch {args.batch_size}, "
          f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs", flush=True)
    for augment in (False, True):
        cfg = resolve(args.dataset, args.arch, {"augment": augment,
                                                "batch_size": args.batch_size})
        aug = augmenter(args.dataset, cfg.seed) if augment else None
        arrays = _model(args.arch, shape, k, aug)
        arrays.fit(x[:2048], y[:2048], batch_size=args.batch_size, epochs=1, verbose=0)
        piped = _model(args.arch, shape, k, None)
        train_ds = pipeline(ds.x_train, ds.y_train, cfg, k, training=True)
        piped.fit(train_ds.take(8), epochs=1, verbose=0)
        # alternate, so a slower spell of a shared machine hits both variants
        times: dict[str, list[float]] = {"arrays": [], "tf.data": []}
        for _ in range(args.rounds):
            times["arrays"].append(epoch_seconds(arrays, x, y, batch_size=args.batch_size,
                                                 shuffle=True))
            times["tf.data"].append(epoch_seconds(piped, train_ds))
        best = {name: min(t) for name, t in times.items()}
        print(f"augmentation {'on ' if augment else 'off'}: "
              + "   ".join(f"{name} {', '.join(f'{t:.1f}' for t in ts)} s"
                         for name, ts in times.items())
              + f"   best {best['arrays']:.1f} vs {best['tf.data']:.1f} s "
              f"({best['arrays'] / best['tf.data']:.2f}x)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
