"""Evaluate an exported SavedModel (not the Keras object) on a test set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    per_class_accuracy: dict[str, float]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    predictions: np.ndarray            # [N] predicted class per test image
    ece: float                         # expected calibration error, ECE_BINS bins

    def to_json(self) -> dict[str, Any]:
        return {
            "test_loss": self.loss,
            "test_accuracy": self.accuracy,
            "test_ece": self.ece,
            "per_class_accuracy": self.per_class_accuracy,
            "confusion_matrix": self.confusion_matrix,
        }


def predict(saved_model_dir: Path, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities ``[N, K]`` from the SavedModel's ``serving_default`` signature."""
    fn = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"]
    parts = [
        fn(image=tf.constant(images[i:i + batch_size]))["probabilities"].numpy()
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts)


ECE_BINS = 15


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    """How far the top-class confidence is from the accuracy: test images are put in
    ``bins`` equal-width confidence bins, and the gap between each bin's mean confidence
    and its accuracy is averaged, weighted by the bin's share of the images (Guo et al.,
    2017). 0 means a predicted 0.9 is right nine times in ten."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 joins bin 0.
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def score(probs: np.ndarray, labels: np.ndarray, class_names: list[str]) -> Evaluation:
    """Cross-entropy, accuracy, per-class accuracy, confusion matrix and calibration."""
    k = len(class_names)
    predicted = probs.argmax(axis=1)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1.0))))
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (labels, predicted), 1)
    per_class = {
        name: float(cm[i, i] / cm[i].sum()) if cm[i].sum() else 0.0
        for i, name in enumerate(class_names)
    }
    return Evaluation(
        loss=loss,
        accuracy=float((predicted == labels).mean()),
        per_class_accuracy=per_class,
        confusion_matrix=cm.tolist(),
        predictions=predicted,
        ece=expected_calibration_error(probs, labels),
    )


def evaluate_saved_model(saved_model_dir: Path, images: np.ndarray, labels: np.ndarray,
                         class_names: list[str]) -> Evaluation:
    return score(predict(saved_model_dir, images), labels, class_names)
