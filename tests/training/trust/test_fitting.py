"""training.trust.fitting: the served graph agreeing with the NumPy fit, and what each
split is fitted on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import dim_pictures, export_tiny, tiny_keras_model, tiny_trust
from training import data, sent, trust
from training.trust import fitting


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
