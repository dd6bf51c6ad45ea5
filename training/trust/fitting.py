"""A version's trust fitted on the pictures a run left unseen (``fit_for``, ``fit``): the
OOD Gaussians, the layers' scales, the temperature, the energy term and the threshold,
with the report of how they were measured; and the OOD score as the exported graph
computes it (``ood_scores``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import keras
import numpy as np

from cnnlab.centering import centres_uploads
from training.config import validation_cut
from training.data import DATASETS, Dataset
from training.trust.features import (
    PICTURE,
    adds_energy,
    layer_features,
    layer_names,
    logits_of,
    reads_picture,
)
from training.trust.pictures import (
    CALIBRATED,
    Pictures,
    Scored,
    as_users_see,
    calibrated_rows,
    cross_fitted,
)
from training.trust.scores import ACCEPT, EnergyTerm, LayerScore, combined, energy, fit_gaussians


@dataclass(frozen=True)
class Trust:
    """A version's temperature, OOD model and threshold, and how they were measured."""

    temperature: float
    layers: list[LayerScore]
    threshold: float
    report: dict[str, Any] = field(default_factory=dict)
    energy: EnergyTerm | None = None

    @property
    def picture(self) -> bool:
        """Whether the score reads the picture itself (``picture_blocks``) first."""
        return bool(self.layers) and self.layers[0].layer == PICTURE

    def to_json(self) -> dict[str, Any]:
        return self.report


def ood_scores(fitted: Trust, model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The OOD score ``[N]`` of ``images`` as the exported graph computes it: the layers'
    terms and, when the version has it, the energy term."""
    feats = layer_features(model, images, fitted.picture)
    scores = combined(fitted.layers, feats)
    if fitted.energy is not None:
        scores = scores + fitted.energy.score(logits_of(model, feats[-1]), fitted.temperature)
    return scores


def fit(model: keras.Model, train: Pictures, held: Pictures, check: Pictures,
        *, held_name: str, check_name: str, pooled: bool = False,
        picture: bool = False, with_energy: bool = False) -> Trust:
    """Fit the OOD Gaussians on ``train``; the layers' scales and the temperature on
    ``held``'s ``CALIBRATED`` parts and the threshold on all of ``held`` (pictures the
    model never trained on), measured on ``check``,
    overall and part by part. ``pooled``: ``held`` and ``check`` are two halves of one
    held-out set; both are fitted on it all (the figures then are in-sample) and the
    out-of-sample figures are cross-fitted (fit on one half, measure on the other, both
    ways, averaged). ``picture``: the score also reads the picture itself
    (``reads_picture``); ``with_energy``: the energy score is one more term
    (``EnergyTerm``, fitted on ``held``'s ``CALIBRATED`` parts after the temperature)."""
    k = model.layers[-1].units
    train_feats = layer_features(model, train.x, picture)
    gaussians = [fit_gaussians(f, train.y, k) for f in train_feats]
    del train_feats
    held_feats = layer_features(model, held.x, picture)
    check_feats = layer_features(model, check.x, picture)
    scale_feats = ([np.concatenate(pair) for pair in zip(held_feats, check_feats, strict=True)]
                   if pooled else held_feats)
    clean = calibrated_rows(held, check) if pooled else calibrated_rows(held)
    layers = [LayerScore(name, g, float(np.median(g.score(f[clean]))) or 1.0)
              for name, g, f in zip(layer_names(model, picture), gaussians, scale_feats,
                                    strict=True)]
    held_out = Scored(held, logits_of(model, held_feats[-1]), combined(layers, held_feats))
    checked = Scored(check, logits_of(model, check_feats[-1]), combined(layers, check_feats))
    temperature = (held_out + checked if pooled else held_out).temperature()
    energy_term = None
    if with_energy:
        fitting = held_out + checked if pooled else held_out
        rows = fitting.calibrated()
        energy_term = EnergyTerm.fit(energy(fitting.logits[rows], temperature))
        held_out, checked = (replace(s, scores=s.scores + energy_term.score(s.logits,
                                                                            temperature))
                             for s in (held_out, checked))
    fitted = held_out + checked if pooled else held_out
    measured = fitted if pooled else checked
    threshold = fitted.threshold()
    fitted_on = (f"{held_name} and {check_name}" if pooled else held_name) + \
        f": {fitted.describe()}"
    measured_on = (fitted_on if pooled else f"{check_name}: {measured.describe()}")
    cross = cross_fitted(held_out, checked) if pooled else {}
    report = {
        "calibration": {
            "method": "temperature scaling",
            "temperature": temperature,
            "fitted_on": f"{fitted_on} (the pictures {' and '.join(CALIBRATED)})",
            "measured_on": f"{measured_on} (ece_before and ece_after: the pictures "
                           f"{' and '.join(CALIBRATED)})",
            "ece_before": measured.ece(1.0),
            "ece_after": measured.ece(temperature),
            "ece_after_by_part": measured.by_part(lambda r: measured.ece(temperature, r)),
            **{k: v for k, v in cross.items() if k.startswith("ece")},
        },
        "ood": {
            "method": "mahalanobis feature ensemble (log-sum)" + (
                " + energy" if energy_term else ""),
            **({"energy": {"median": energy_term.median, "scale": energy_term.scale}}
               if energy_term else {}),
            "layers": {layer.layer: {"dims": int(layer.gaussians.whiten.shape[1]),
                                     "scale": layer.scale} for layer in layers},
            "fitted_on": f"{len(train)} training pictures: {train.describe()}",
            "threshold": threshold,
            "threshold_fitted_on": fitted_on,
            "accepts": ACCEPT,
            "accepted_on_check": measured.accepted(threshold),
            "accepted_by_part": measured.by_part(lambda r: measured.accepted(threshold, r)),
            "measured_on": measured_on,
            **{k: v for k, v in cross.items() if k.startswith("accepted")},
        },
    }
    return Trust(temperature=temperature, layers=layers, threshold=threshold, report=report,
                 energy=energy_term)


def fit_for(model: keras.Model, ds: Dataset, validation: str,
            picture: bool | None = None, sent_copies: bool = True, seed: int = 0,
            with_energy: bool | None = None) -> Trust:
    """``fit`` on the splits a run left unseen: its validation split (the last rows of
    the training set, as Keras takes them) for the scales, temperature and threshold and
    the test set to check them; or, when it validated on the test set or not at all, the
    test set (its two halves pooled, the out-of-sample figures cross-fitted). Every split
    holds its pictures as users' pictures reach the model (``as_users_see``; the held-out
    and checked ones with copies as sent when ``sent_copies``). ``picture``: whether the
    score reads the picture itself (default: ``reads_picture``)."""
    picture = reads_picture(ds.name) if picture is None else picture
    with_energy = adds_energy(ds.name) if with_energy is None else with_energy
    sent_copies = sent_copies and ds.name in DATASETS  # (copies of digits and clothing)
    cut = validation_cut(len(ds.x_train), validation)
    half = len(ds.x_test) // 2
    rng = np.random.default_rng(seed)

    def seen(x: np.ndarray, y: np.ndarray) -> Pictures:
        return as_users_see(x, y, ds.name, rng, sent_copies)

    # (the Gaussians: pictures as stored and uploaded only, see the module's docstring)
    train = as_users_see(ds.x_train[:cut], ds.y_train[:cut], ds.name, rng, False)
    # The threshold is set with copies as sent only where uploads are centred (digits):
    # a garment small on a big sheet stays small, the network misreads it, and the verdict
    # rightly flags it (the copies are still measured on: "accepted_by_part").
    threshold_copies = sent_copies and centres_uploads(ds.name)
    if cut < len(ds.x_train):
        return fit(model, train, as_users_see(ds.x_train[cut:], ds.y_train[cut:], ds.name,
                                              rng, threshold_copies),
                   seen(ds.x_test, ds.y_test),
                   held_name=f"the validation split ({len(ds.x_train) - cut} images)",
                   check_name=f"the test set ({len(ds.x_test)} images)", picture=picture,
                   with_energy=with_energy)
    return fit(model, train, as_users_see(ds.x_test[:half], ds.y_test[:half], ds.name, rng,
                                          threshold_copies),
               as_users_see(ds.x_test[half:], ds.y_test[half:], ds.name, rng,
                            threshold_copies),
               held_name=f"the first half of the test set ({half} images)",
               check_name=f"the second half ({len(ds.x_test) - half} images)",
               pooled=True, picture=picture, with_energy=with_energy)
