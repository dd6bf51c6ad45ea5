"""training.trust.scores: the temperature, the Gaussians, the energy term and the ranking
figures."""

from __future__ import annotations

import numpy as np
import pytest

from training import trust


def test_the_fitted_temperature_undoes_a_known_one() -> None:
    """Labels drawn from softmax(z); logits handed over as 3z: T = 3 fits best."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, (20_000, 5))
    p = trust.softmax(z)
    labels = np.array([rng.choice(5, p=row) for row in p])
    assert trust.fit_temperature(3 * z, labels) == pytest.approx(3.0, rel=0.05)
    assert trust.fit_temperature(z, labels) == pytest.approx(1.0, rel=0.05)


def test_the_gaussian_score_is_the_mahalanobis_distance_to_the_nearest_mean() -> None:
    rng = np.random.default_rng(1)
    cov = np.array([[4.0, 1.0], [1.0, 1.0]])
    means = np.array([[0.0, 0.0], [10.0, 0.0]])
    labels = rng.integers(0, 2, 50_000)
    feats = means[labels] + rng.multivariate_normal([0, 0], cov, len(labels))
    g = trust.fit_gaussians(feats.astype(np.float32), labels, 2)
    point = np.array([[1.0, 2.0]])
    diff = point - means
    expected = min(float(d @ np.linalg.inv(cov) @ d) for d in diff)
    assert g.score(point)[0] == pytest.approx(expected, rel=0.05)


def test_auroc_and_fpr_rank_the_scores() -> None:
    inside = np.array([0.0, 1.0, 2.0, 3.0])
    assert trust.auroc(inside, np.array([4.0, 5.0])) == 1.0
    assert trust.auroc(inside, np.array([-1.0])) == 0.0
    assert trust.auroc(inside, np.array([1.0])) == pytest.approx(1.5 / 4)  # a tie: half
    assert trust.fpr_at(inside, np.array([0.5, 10.0]), tpr=0.75) == 0.5


def test_the_energy_term_is_zero_at_the_held_out_median() -> None:
    logits = np.random.default_rng(0).normal(size=(101, 10))
    energies = trust.energy(logits, 1.5)
    term = trust.EnergyTerm.fit(energies)
    scored = term.score(logits, 1.5)
    assert np.median(scored) == pytest.approx(0.0, abs=1e-6)
    low, high = np.quantile(scored, [0.25, 0.75])
    assert high - low == pytest.approx(1.0, rel=1e-5)  # in interquartile ranges
