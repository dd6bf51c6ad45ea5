"""The pictures a version's trust is fitted and measured on, in named parts (as stored, as
the service prepares their uploads, as users send them, typeset digits), and those
pictures scored — their logits and OOD scores — with the figures the report gives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnlab.centering import center_like_mnist, centres_uploads
from training import sent
from training.evaluate import expected_calibration_error
from training.trust.scores import ACCEPT, fit_temperature, softmax

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
