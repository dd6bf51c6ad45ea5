"""The arithmetic of a version's trust, in NumPy: class-conditional Gaussians with one
shared covariance in whitened coordinates, a layer's scaled distance, the energy term,
the temperature that minimises the negative log-likelihood, and the ranking figures the
reports give (AUROC, the share of out-of-distribution pictures accepted)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ACCEPT = 0.95        # share of held-out in-distribution pictures the threshold accepts
MAX_DIMS = 256       # whitened dimensions kept (the covariance's largest directions)
SHRINK = 1e-3        # covariance shrinkage toward its mean eigenvalue (numerical safety)
LOG_FLOOR = 1e-6     # added to a scaled distance before its logarithm (a distance of 0)


@dataclass(frozen=True)
class Gaussians:
    """Class-conditional Gaussians with one shared covariance, in whitened coordinates:
    ``z = (features - centre) @ whiten``; a class's mean is ``means[k]``."""

    centre: np.ndarray   # [D]
    whiten: np.ndarray   # [D, d]
    means: np.ndarray    # [K, d]

    def score(self, features: np.ndarray) -> np.ndarray:
        """Squared distance to the nearest class mean ``[N]`` (larger: more unusual)."""
        z = (features - self.centre) @ self.whiten
        d2 = (np.sum(z * z, axis=1, keepdims=True) - 2 * z @ self.means.T
              + np.sum(self.means * self.means, axis=1))
        return np.asarray(np.maximum(d2.min(axis=1), 0.0), dtype=np.float32)


@dataclass(frozen=True)
class LayerScore:
    """One layer's part of the OOD score: its Gaussians, and the median distance of
    held-out in-distribution pictures, which the distance is divided by."""

    layer: str
    gaussians: Gaussians
    scale: float

    def score(self, features: np.ndarray) -> np.ndarray:
        """``log(distance / scale)`` ``[N]``: 0 at the held-out median."""
        scaled = self.gaussians.score(features) / self.scale
        return np.asarray(np.log(scaled + LOG_FLOOR), dtype=np.float32)


@dataclass(frozen=True)
class EnergyTerm:
    """The energy score (``energy``, at the version's temperature) as one more term of the
    OOD score: its distance from the held-out in-distribution pictures' median in units
    of their interquartile range (0 at the median, like a layer's ``log`` term)."""

    median: float
    scale: float

    @staticmethod
    def fit(energies: np.ndarray) -> EnergyTerm:
        low, median, high = np.quantile(energies, [0.25, 0.5, 0.75])
        return EnergyTerm(float(median), float(high - low) or 1.0)

    def score(self, logits: np.ndarray, temperature: float) -> np.ndarray:
        return np.asarray((energy(logits, temperature) - self.median) / self.scale,
                          dtype=np.float32)


def combined(layers: list[LayerScore], feats: list[np.ndarray]) -> np.ndarray:
    """The OOD score ``[N]``: the logarithms of the layers' scaled distances, summed (a
    geometric mean: no one layer's scale dominates)."""
    return np.asarray(sum(layer.score(f) for layer, f in zip(layers, feats, strict=True)),
                      dtype=np.float32)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def log_sum_exp(z: np.ndarray) -> np.ndarray:
    """``log sum exp`` of each row of ``z`` ``[N]``, without overflow."""
    top = z.max(axis=1)
    return np.asarray(top + np.log(np.exp(z - top[:, None]).sum(axis=1)))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    return float(np.mean(log_sum_exp(z) - z[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The ``T`` minimising the NLL of ``softmax(logits / T)``: a golden-section search
    over ``log T`` in [1/20, 20] (the NLL is convex in ``1/T``, so unimodal)."""
    lo, hi = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, labels, math.exp(b))
    return math.exp((lo + hi) / 2)


def fit_gaussians(feats: np.ndarray, labels: np.ndarray, classes: int,
                  max_dims: int = MAX_DIMS) -> Gaussians:
    """Class means and the shared covariance of ``feats``; the whitening keeps the
    covariance's ``max_dims`` largest directions (all of them when there are fewer)."""
    x = feats.astype(np.float64)
    means = np.stack([x[labels == k].mean(axis=0) if np.any(labels == k)
                      else x.mean(axis=0) for k in range(classes)])
    centred = x - means[labels]
    cov = centred.T @ centred / max(len(x) - classes, 1)
    values, vectors = np.linalg.eigh(cov)            # ascending
    order = np.argsort(values)[::-1][:max_dims]
    floor = SHRINK * max(float(values.mean()), 1e-12)
    whiten = vectors[:, order] / np.sqrt(np.maximum(values[order], 0.0) + floor)
    centre = x.mean(axis=0)
    return Gaussians(centre=centre.astype(np.float32), whiten=whiten.astype(np.float32),
                     means=((means - centre) @ whiten).astype(np.float32))


def energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """The energy ``-T log sum exp(logits / T)`` ``[N]``: larger means more unusual, like
    the Mahalanobis score."""
    return -temperature * log_sum_exp(logits / temperature)


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """Probability that an out-of-distribution score exceeds an in-distribution one
    (ties count half): the area under the ROC curve, from ranks."""
    scores = np.concatenate([inside, outside])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # average the ranks of ties
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    n_in, n_out = len(inside), len(outside)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def fpr_at(inside: np.ndarray, outside: np.ndarray, tpr: float = ACCEPT) -> float:
    """Share of out-of-distribution pictures accepted when the threshold accepts ``tpr``
    of the in-distribution ones."""
    return float(np.mean(outside <= np.quantile(inside, tpr)))
