"""Class names with scores, as the standard APIs give them: TF Serving's classification
results (every class, best first) and Triton's classification extension (the k best of an
output as ``"score:index:label"`` strings)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.errors import InvalidInput


def _label(class_names: Sequence[str], index: int) -> str:
    return class_names[index] if index < len(class_names) else str(index)


def ranked(probabilities: Sequence[float], class_names: Sequence[str]) -> list[tuple[str, float]]:
    """Every class with its score, best first (TF Serving's classification result)."""
    order = sorted(range(len(probabilities)), key=lambda k: -probabilities[k])
    return [(_label(class_names, k), float(probabilities[k])) for k in order]


def top_classes(scores: np.ndarray, count: int, class_names: Sequence[str],
                what: str) -> np.ndarray:
    """Triton's classification of ``scores`` ``[N, K]``: ``[N, min(count, K)]`` byte strings
    ``b"score:index:label"``, best first."""
    if scores.ndim != 2:
        raise InvalidInput(f"{what}: classification needs a [batch, classes] output, this one "
                           f"is {list(scores.shape)}")
    if count < 1:
        raise InvalidInput(f"{what}: classification count must be at least 1, got {count}")
    best = np.argsort(-scores, axis=1, kind="stable")[:, :count]
    out = np.empty(best.shape, dtype=object)
    for i, row in enumerate(best):
        for j, k in enumerate(row.tolist()):
            out[i, j] = f"{scores[i, k]:f}:{k}:{_label(class_names, k)}".encode()
    return out
