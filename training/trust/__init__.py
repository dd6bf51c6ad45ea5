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

Everything is fitted by ``fit`` (``fitting``) on what ``features`` reads of the model,
with ``scores``' arithmetic, over ``pictures``; and exported into the served graph by
``training.export``.
"""

from training.trust.features import (
    feature_outputs,
    layer_features,
    logits_of,
    penultimate_features,
    picture_blocks,
    reads_picture,
    scored_values,
    summarise,
)
from training.trust.fitting import Trust, fit, fit_for, ood_scores
from training.trust.pictures import (
    SENT,
    STORED,
    UPLOADED,
    Pictures,
    Scored,
    as_users_see,
    calibrated_rows,
)
from training.trust.scores import (
    ACCEPT,
    LOG_FLOOR,
    EnergyTerm,
    Gaussians,
    auroc,
    combined,
    energy,
    fit_gaussians,
    fit_temperature,
    fpr_at,
    softmax,
)

__all__ = ["ACCEPT", "LOG_FLOOR", "SENT", "STORED", "UPLOADED", "EnergyTerm", "Gaussians",
           "Pictures", "Scored", "Trust", "as_users_see", "auroc", "calibrated_rows", "combined",
           "energy", "feature_outputs", "fit", "fit_for", "fit_gaussians", "fit_temperature",
           "fpr_at", "layer_features", "logits_of", "ood_scores", "penultimate_features",
           "picture_blocks", "reads_picture", "scored_values", "softmax", "summarise"]
