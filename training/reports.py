"""PNG reports written next to each exported model (what the tutorials plot)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or CI

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def training_curves(history: dict[str, list[float]], path: Path) -> Path:
    """Train vs validation loss and accuracy per epoch."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history.get("loss", [])) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history.get(metric, []), "o-", label=f"training {metric}")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "s--", label=f"validation {metric}")
        ax.set_xlabel("epoch")
        # whole epochs only, and room around a single point (a one-epoch run)
        ax.set_xticks(list(epochs) if len(epochs) <= 20 else ax.get_xticks())
        ax.set_xlim(0.5, max(len(epochs), 1) + 0.5)
        ax.set_ylabel(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    return _save(fig, path)


def confusion_matrix(cm: list[list[int]], class_names: list[str], path: Path) -> Path:
    m = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if m[i, j] > m.max() / 2 else "black")
    return _save(fig, path)


def filters_grid(kernel: np.ndarray, path: Path, title: str) -> Path:
    """First-layer kernels ``[kh,kw,in,out]``, min-max scaled to 0..1 (tutorial 000); a
    kernel that reads a colour picture (3 inputs) drawn in colour."""
    k = (kernel - kernel.min()) / max(float(kernel.max() - kernel.min()), 1e-12)
    n = k.shape[3]
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.2), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            if k.shape[2] == 3:
                ax.imshow(k[:, :, :, i])
            else:
                ax.imshow(k[:, :, 0, i], cmap="gray", vmin=0, vmax=1)
    fig.suptitle(title)
    return _save(fig, path)


def misclassified(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
                  class_names: list[str], path: Path, limit: int = 25) -> Path:
    wrong = np.flatnonzero(labels != predicted)[:limit]
    cols = 5
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2, rows * 2.2), squeeze=False)
    for ax, idx in zip(axes.flat, wrong, strict=False):
        if images.shape[-1] == 3:
            ax.imshow(images[idx])
        else:
            ax.imshow(images[idx, :, :, 0], cmap="binary")
        ax.set_title(f"#{idx} true {class_names[labels[idx]]}\npred {class_names[predicted[idx]]}",
                     fontsize=8)
    for ax in axes.flat:
        ax.set_axis_off()
    return _save(fig, path)


def feature_maps(saved_model_dir: Path, image: np.ndarray, out_dir: Path) -> list[Path]:
    """One PNG per conv/pool layer: every channel's map for one test image."""
    sig = tf.saved_model.load(str(saved_model_dir)).signatures["activations"]
    acts = sig(image=tf.constant(image[None]))
    paths = []
    for name, value in acts.items():
        a = value.numpy()[0]
        if a.ndim != 3 or not any(t in name for t in ("conv", "pool")) or name.endswith("_bn"):
            continue
        n = a.shape[-1]
        cols = min(n, 16)
        rows = -(-n // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8 + 0.4),
                                 squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if i < n:
                ax.imshow(a[:, :, i], cmap="viridis")
        fig.suptitle(f"{name} {a.shape}")
        paths.append(_save(fig, out_dir / f"feature_maps_{name.replace('/', '_')}.png"))
    return paths
