"""What a version knows about its own answers: calibrated probabilities and a score of how
unlike the training data a picture is.

- **Temperature scaling** (Guo et al., 2017): the logits are divided by one number ``T``
  fitted to minimise the negative log-likelihood on held-out data. The predicted class
  never changes (so neither does the accuracy); only the confidence does.
- **Out-of-distribution score**: a feature ensemble of Mahalanobis distances (Lee et al.,
  2018). At every conv block's activated output (each channel's spatial mean and standard
  deviation), at the penultimate features and, for clothing, at the picture itself (its
  4x4 block means), the squared distance to the nearest class mean under one shared
  covariance, fitted on the training images, is divided by its median over held-out
  in-distribution pictures; the score is the sum of their logarithms. Early layers catch
  what is wrong in texture (noise, photographs), late ones what is wrong in shape (a boot
  for a digit), the picture where the ink is (a digit's few strokes, unlike a garment
  that fills its frame). The features are whitened once, at export, so serving a layer's
  distance is a ``[D, d]`` matrix product and a distance to ``K`` points. For digits the
  energy score (``-T log sum exp(logits / T)``, Liu et al., 2020) is one more term, in
  interquartile ranges from its held-out median (``EnergyTerm``): alone it separates
  letters and noise worse, but with the distances it tells garments from thick digits
  better. The penultimate layer alone separates worse, and so does the picture layer for
  digits (``bench/ood.py --compare``).
- **What is fitted where**: the Gaussians on the training pictures as stored and as
  uploads of them are prepared; the scales on the held-out ones; the threshold — the score
  that accepts ``ACCEPT`` of held-out in-distribution pictures — on those and on copies of
  them as users send them (``as_users_see``: blurred, blown up, on grey paper, printed...).
  Gaussians fitted with the copies as sent accept clothes as blurred digits
  (``bench/ood.py --compare``); a threshold set with them accepts what users send.

Everything is fitted by ``fit`` and exported into the served graph by ``training.export``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import keras
import numpy as np

from cnnlab.centering import center_like_mnist, centres_uploads
from training import architectures, sent
from training.config import validation_cut
from training.data import DATASETS, Dataset
from training.evaluate import expected_calibration_error

ACCEPT = 0.95        # share of held-out in-distribution pictures the threshold accepts
MAX_DIMS = 256       # whitened dimensions kept (the covariance's largest directions)
SHRINK = 1e-3        # covariance shrinkage toward its mean eigenvalue (numerical safety)
LOG_FLOOR = 1e-6     # added to a scaled distance before its logarithm (a distance of 0)
METHODS = ("mahalanobis", "energy")
PICTURE = "picture"  # the name of the picture's own part of the score
PICTURE_BLOCK = 4    # the picture layer's features: means of blocks this many pixels a side


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


def penultimate(model: keras.Model) -> keras.Model:
    """``model`` up to the input of its last (softmax) layer: the features it classifies."""
    return keras.Model(model.inputs[0], model.layers[-1].input)


def scored_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers the OOD score reads: every conv block's activated output (the
    penultimate features come last, from ``feature_outputs``)."""
    return [architectures.block_output(model, conv)
            for conv in architectures.conv_layers(model)]


def summarise(value: Any) -> Any:
    """A layer's output as OOD features: conv maps ``[N,h,w,C]`` -> each channel's
    spatial mean and standard deviation ``[N,2C]``; flat features as they are. ``value``
    is a NumPy array or a tensor (the same function serves the fit and the graph)."""
    if len(value.shape) != 4:
        return value
    import tensorflow as tf

    mean, var = tf.nn.moments(value, axes=[1, 2])
    return tf.concat([mean, tf.sqrt(tf.maximum(var, 0.0))], axis=1)


def reads_picture(dataset: str) -> bool:
    """Whether the OOD score of a model of ``dataset`` reads the picture itself. Clothing:
    yes (a digit's strokes sit where no garment is dark). Digits: no, as uploads are
    centred like MNIST's, a centred garment's blocks look like a thick digit's, and the
    picture layer lowers how well the digit model's score separates clothes
    (``bench/ood.py --compare``). A folder's pictures: no (their blocks would be as many
    dimensions as a large picture has pixels over 16)."""
    return dataset == "fashion_mnist"


def adds_energy(dataset: str) -> bool:
    """Whether the OOD score of a model of ``dataset`` adds the energy term
    (``EnergyTerm``). Digits: yes; the logits tell a garment from a digit where the
    feature distances alone accepted thick strokes (``bench/ood.py --compare``: AUROC
    against Fashion-MNIST 0.9878 without it)."""
    return dataset == "mnist"


def picture_blocks(images: Any) -> Any:
    """The picture itself as OOD features: the means of its ``PICTURE_BLOCK``-pixel square
    blocks, in 0..1, ``[N, H/4 * W/4 * C]`` (a NumPy array or a tensor in, a tensor out)."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32) / 255.0
    blocks = tf.nn.avg_pool2d(x, PICTURE_BLOCK, PICTURE_BLOCK, "VALID")
    return tf.reshape(blocks, [tf.shape(blocks)[0], -1])


def scored_values(body: keras.Model, images: Any, picture: bool) -> list[Any]:
    """What the OOD score reads of ``images``: their picture blocks (when ``picture``),
    ``body``'s (``feature_outputs``) conv maps and, last, the penultimate features."""
    import tensorflow as tf

    values = outputs_of(body, tf.cast(images, tf.float32))
    return [picture_blocks(images), *values] if picture else values


def feature_outputs(model: keras.Model) -> keras.Model:
    """``model`` -> the scored layers' outputs and the penultimate features, in order."""
    return keras.Model(model.inputs[0],
                       [*(layer.output for layer in scored_layers(model)),
                        model.layers[-1].input])


def outputs_of(body: keras.Model, x: Any) -> list[Any]:
    """``body``'s outputs for ``x`` as a list (Keras gives a lone output as itself)."""
    outs = body(x, training=False)
    return list(outs) if isinstance(outs, list | tuple) else [outs]


def layer_names(model: keras.Model, picture: bool = False) -> list[str]:
    return [*([PICTURE] if picture else []), *(layer.name for layer in scored_layers(model)),
            "penultimate"]


def layer_features(model: keras.Model, images: np.ndarray, picture: bool = False,
                   batch_size: int = 1000) -> list[np.ndarray]:
    """Per scored layer (``layer_names``), the OOD features ``[N, D_l]`` of ``images``."""
    body = feature_outputs(model)
    parts: list[list[np.ndarray]] = [[] for _ in layer_names(model, picture)]
    for i in range(0, len(images), batch_size):
        values = scored_values(body, images[i:i + batch_size], picture)
        for part, value in zip(parts, values, strict=True):
            part.append(np.asarray(summarise(value)))
    return [np.concatenate(p) for p in parts]


def combined(layers: list[LayerScore], feats: list[np.ndarray]) -> np.ndarray:
    """The OOD score ``[N]``: the logarithms of the layers' scaled distances, summed (a
    geometric mean: no one layer's scale dominates)."""
    return np.asarray(sum(layer.score(f) for layer, f in zip(layers, feats, strict=True)),
                      dtype=np.float32)


def ood_scores(fitted: Trust, model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The OOD score ``[N]`` of ``images`` as the exported graph computes it: the layers'
    terms and, when the version has it, the energy term."""
    feats = layer_features(model, images, fitted.picture)
    scores = combined(fitted.layers, feats)
    if fitted.energy is not None:
        scores = scores + fitted.energy.score(logits_of(model, feats[-1]), fitted.temperature)
    return scores


def head(model: keras.Model) -> tuple[np.ndarray, np.ndarray]:
    """The last Dense layer's kernel ``[D, K]`` and bias ``[K]``: features -> logits."""
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense):
        raise ValueError(f"the last layer must be Dense (softmax), not {type(last).__name__}")
    return np.asarray(last.kernel), np.asarray(last.bias)


def features(model: keras.Model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Penultimate features ``[N, D]`` of uint8 ``images``, in inference mode."""
    body = penultimate(model)
    return np.concatenate([
        np.asarray(body(images[i:i + batch_size].astype("float32"), training=False))
        for i in range(0, len(images), batch_size)])


def logits_of(model: keras.Model, feats: np.ndarray) -> np.ndarray:
    kernel, bias = head(model)
    return np.asarray(feats @ kernel + bias, dtype=np.float64)


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


STORED, UPLOADED, SENT, PRINTED = "as stored", "as uploaded", "as sent", "printed"
# The temperature is fitted on the pictures as stored and uploaded: the published ECE is
# the test set's, and the copies as sent, harder to read, would make the probabilities of
# clean pictures underconfident. (Their ECE is reported, part by part.)
CALIBRATED = (STORED, UPLOADED)


@dataclass(frozen=True)
class Pictures:
    """Labelled pictures made of named parts, in order: the same pictures as stored, as
    the service prepares their uploads, as users send them (``training.sent``)..."""

    x: np.ndarray                 # [N, H, W, C] uint8
    y: np.ndarray                 # [N]
    parts: dict[str, int]         # part name -> its row count, in order

    @staticmethod
    def of(parts: dict[str, tuple[np.ndarray, np.ndarray]]) -> Pictures:
        kept = {name: xy for name, xy in parts.items() if len(xy[0])}
        if not kept:
            raise ValueError("no pictures")
        return Pictures(np.concatenate([x for x, _ in kept.values()]),
                        np.concatenate([y for _, y in kept.values()]),
                        {name: len(x) for name, (x, _) in kept.items()})

    def __len__(self) -> int:
        return len(self.y)

    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for name, rows in self.parts.items():
            out[name] = slice(start, start + rows)
            start += rows
        return out

    def describe(self) -> str:
        """``"5000 as stored, 5000 as uploaded, ..."``."""
        return ", ".join(f"{rows} {name}" for name, rows in self.parts.items())

    def calibrated(self) -> np.ndarray:
        """The rows of the ``CALIBRATED`` parts (of pooled halves too: ``1:stored``)."""
        return np.concatenate([np.arange(part.start, part.stop)
                               for name, part in self.slices().items()
                               if name.split(":")[-1] in CALIBRATED])


def as_users_see(x: np.ndarray, y: np.ndarray, dataset: str, rng: np.random.Generator,
                 sent_copies: bool = True) -> Pictures:
    """Pictures ``x`` (of ``dataset``) as the model may meet them: as stored; as the service
    prepares an upload of them (digits are centred like MNIST's, ``cnnlab.centering``,
    which moves strokes by a pixel or two); as users send them (``training.sent``, one copy
    each, when ``sent_copies``); and, for digits, a tenth as many typeset digits."""
    parts = {STORED: (x, y)}
    if centres_uploads(dataset) and len(x):
        parts[UPLOADED] = (np.stack(center_like_mnist(x[..., 0]))[..., None], y)
    if sent_copies and len(x):
        parts[SENT] = (sent.as_sent(x, dataset, rng), y)
        if centres_uploads(dataset):
            parts[PRINTED] = sent.printed_digits(max(len(x) // 10, 1), rng,
                                                 x.shape[1], x.shape[2])
    return Pictures.of(parts)


@dataclass(frozen=True)
class Scored:
    """Pictures with their logits and OOD scores."""

    pictures: Pictures
    logits: np.ndarray
    scores: np.ndarray

    def __add__(self, other: Scored) -> Scored:
        """Both (their parts' names prefixed ``1:`` and ``2:``)."""
        def named(s: Scored, tag: str) -> dict[str, int]:
            return {f"{tag}{n}": rows for n, rows in s.pictures.parts.items()}

        pictures = Pictures(np.concatenate([self.pictures.x, other.pictures.x]),
                            np.concatenate([self.pictures.y, other.pictures.y]),
                            {**named(self, "1:"), **named(other, "2:")})
        return Scored(pictures, np.concatenate([self.logits, other.logits]),
                      np.concatenate([self.scores, other.scores]))

    def ece(self, temperature: float, rows: Any = None) -> float:
        """ECE of the pictures (default: the ``CALIBRATED`` parts) or of ``rows``."""
        if rows is None:
            rows = self.calibrated()
        return expected_calibration_error(softmax(self.logits[rows], temperature),
                                          self.pictures.y[rows])

    def accepted(self, threshold: float, rows: Any = slice(None)) -> float:
        return float(np.mean(self.scores[rows] <= threshold))

    def rows(self) -> dict[str, np.ndarray]:
        """Each part's rows, the parts of pooled halves taken together."""
        rows: dict[str, list[int]] = {}
        for name, part in self.pictures.slices().items():
            rows.setdefault(name.split(":")[-1], []).extend(range(part.start, part.stop))
        return {name: np.array(r) for name, r in rows.items()}

    def by_part(self, measure: Any) -> dict[str, float]:
        """``measure(rows)`` of each part."""
        return {name: measure(rows) for name, rows in self.rows().items()}

    def threshold(self) -> float:
        """The score that accepts ``ACCEPT`` of the pictures, all parts together."""
        return float(np.quantile(self.scores, ACCEPT))

    def temperature(self) -> float:
        """The temperature fitted on the ``CALIBRATED`` parts."""
        rows = self.calibrated()
        return fit_temperature(self.logits[rows], self.pictures.y[rows])

    def calibrated(self) -> np.ndarray:
        """The rows of the ``CALIBRATED`` parts."""
        return self.pictures.calibrated()

    def describe(self) -> str:
        counts: dict[str, int] = {}
        for name, n in self.pictures.parts.items():
            counts[name.split(":")[-1]] = counts.get(name.split(":")[-1], 0) + n
        return ", ".join(f"{n} {name}" for name, n in counts.items())


def calibrated_rows(*pictures: Pictures) -> np.ndarray:
    """The rows of the ``CALIBRATED`` parts of ``pictures`` taken one after another."""
    starts = np.cumsum([0, *(len(p) for p in pictures)])
    return np.concatenate([p.calibrated() + start
                           for p, start in zip(pictures, starts, strict=False)])


def cross_fitted(a: Scored, b: Scored) -> dict[str, float]:
    """Out-of-sample figures for what is fitted on ``a`` and ``b`` together: fitted on one,
    measured on the other, both ways round, averaged."""
    def ece_after(fit_on: Scored, on: Scored) -> float:
        return on.ece(fit_on.temperature())

    def accepted(fit_on: Scored, on: Scored) -> float:
        return on.accepted(fit_on.threshold())

    return {"ece_after_cross_fitted": (ece_after(a, b) + ece_after(b, a)) / 2,
            "accepted_cross_fitted": (accepted(a, b) + accepted(b, a)) / 2}


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
