"""training.trust: the temperature, the Gaussians, the ranking figures, and the served
graph agreeing with the NumPy fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import dim_pictures, export_tiny, tiny_keras_model, tiny_trust
from training import data, sent, trust
from training.trust import fitting


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


@pytest.mark.parametrize(("picture", "energy"), [(False, False), (True, False), (False, True)],
                         ids=["layers", "layers and picture", "layers and energy"])
def test_the_served_graph_gives_the_fitted_scores(tmp_path: Path, picture: bool,
                                                  energy: bool) -> None:
    model = tiny_keras_model(seed=5)
    fitted = tiny_trust(model, picture, energy)
    assert fitted.picture == picture and (fitted.energy is not None) == energy
    assert next(iter(fitted.report["ood"]["layers"])) == ("picture" if picture else "conv1")
    version = export_tiny(tmp_path / "tiny", version=1, seed=5, trusted=True, picture=picture,
                          energy=energy)
    images = np.concatenate([dim_pictures(8, 9), np.full((2, 28, 28, 1), 255, np.uint8)])
    out = tf.saved_model.load(str(version)).signatures["serving_default"](
        image=tf.constant(images))
    feats = trust.layer_features(model, images, picture)
    expected = trust.ood_scores(fitted, model, images)
    layers_only = trust.combined(fitted.layers, feats)
    assert np.allclose(expected, layers_only) != energy  # the energy term counts
    np.testing.assert_allclose(out["ood_score"].numpy(), expected, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(out["in_distribution"].numpy(), expected <= fitted.threshold)
    calibrated = trust.softmax(trust.logits_of(model, feats[-1]), fitted.temperature)
    np.testing.assert_allclose(out["probabilities"].numpy(), calibrated, atol=1e-5)
    assert not out["in_distribution"].numpy()[-2:].any()  # bright: unlike dim pictures


def test_the_picture_layer_is_its_block_means() -> None:
    images = np.zeros((2, 28, 28, 1), np.uint8)
    images[0, :4, :4] = 255         # the top-left block, all white
    images[1, 24:, 26:] = 102       # half of the bottom-right block at 0.4
    blocks = np.asarray(trust.picture_blocks(images))
    assert blocks.shape == (2, 49)
    assert blocks[0, 0] == 1.0 and blocks[0, 1:].sum() == 0
    assert blocks[1, 48] == pytest.approx(0.2) and blocks[1, :48].sum() == 0


def test_only_clothing_models_read_the_picture() -> None:
    assert trust.reads_picture("fashion_mnist") and not trust.reads_picture("mnist")


def test_the_energy_term_is_zero_at_the_held_out_median() -> None:
    logits = np.random.default_rng(0).normal(size=(101, 10))
    energies = trust.energy(logits, 1.5)
    term = trust.EnergyTerm.fit(energies)
    scored = term.score(logits, 1.5)
    assert np.median(scored) == pytest.approx(0.0, abs=1e-6)
    low, high = np.quantile(scored, [0.25, 0.75])
    assert high - low == pytest.approx(1.0, rel=1e-5)  # in interquartile ranges


def test_a_run_with_a_validation_split_fits_nothing_on_the_test_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The OOD Gaussians, the layers' scales, the temperature and the threshold of a run
    that held out part of its training set are fitted on training pictures only (and
    their copies as sent); the test set is only measured on."""
    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 256, (60, 28, 28, 1), dtype=np.uint8)
    labels = np.arange(60) % 10
    ds = data.Dataset("mnist", pictures[:40], labels[:40], pictures[40:], labels[40:])
    seen: dict[str, np.ndarray] = {}

    def record(model: object, train: trust.Pictures, held: trust.Pictures,
               check: trust.Pictures, **kwargs: object) -> None:
        seen.update(train=train.x, held=held.x, check=check.x)

    monkeypatch.setattr(fitting, "fit", record)
    # copies as sent that are their pictures unchanged, so any copy of a test picture shows
    monkeypatch.setattr(sent, "as_sent", lambda x, dataset, rng: x.copy())
    trust.fit_for(tiny_keras_model(), ds, "0.25")
    test_rows = {x.tobytes() for x in trust.as_users_see(
        ds.x_test, ds.y_test, ds.name, np.random.default_rng(0), sent_copies=False).x}
    assert test_rows <= {x.tobytes() for x in seen["check"]}  # measured there...
    assert not test_rows & {x.tobytes() for x in seen["train"]}  # ...and fitted nowhere
    assert not test_rows & {x.tobytes() for x in seen["held"]}


def test_the_calibrated_rows_are_the_stored_and_uploaded_parts_wherever_they_sit() -> None:
    def pictures(stored: int, uploaded: int, sent: int) -> trust.Pictures:
        parts = {trust.STORED: stored, trust.UPLOADED: uploaded, trust.SENT: sent}
        return trust.Pictures.of({name: (np.zeros((n, 2, 2, 1), np.uint8), np.zeros(n))
                                  for name, n in parts.items()})

    a, b = pictures(3, 2, 4), pictures(1, 0, 2)
    assert a.calibrated().tolist() == [0, 1, 2, 3, 4]
    assert trust.calibrated_rows(a, b).tolist() == [0, 1, 2, 3, 4, 9]
    pooled = (trust.Scored(a, np.zeros((9, 2)), np.zeros(9))
              + trust.Scored(b, np.zeros((3, 2)), np.zeros(3)))
    assert sorted(pooled.calibrated().tolist()) == [0, 1, 2, 3, 4, 9]
