"""Confidence-based performance estimation (CBPE): a classifier's metrics before its labels arrive.

The published method (NannyML's CBPE; Kivimäki et al., "Confidence-based performance
estimation", 2023): when the model's probabilities are calibrated, the probability it gives
its predicted class is the chance that prediction is right, so the expected confusion matrix
of rows without labels is a sum of probabilities, and every metric built on it follows:

- per class c, over rows predicted c: expected TP = sum p_c, FP = sum (1 - p_c); over rows
  predicted another class: expected FN = sum p_c;
- ``accuracy`` = mean of p_(predicted class); ``precision_macro``, ``recall_macro``
  (= ``balanced_accuracy``), ``f1_macro`` average the per-class ratios of expected counts;
- ``roc_auc``: the expected ROC curve, rows ranked by the model's score, each row counted as a
  positive with weight p and a negative with weight 1 - p, as NannyML 0.13 computes it;
  macro one-vs-rest for more than two classes.

Calibration (``drift.cbpe.calibration: isotonic``): one isotonic regression per class
(one-vs-rest; for two classes only the positive one, the other is 1 - p) fitted on labelled
rows where that lowers the expected calibration error on held-out folds (NannyML's
``needs_calibration``), probabilities renormalised to sum to 1. The estimate holds under covariate shift (the
inputs move, P(label | inputs) does not); a concept shift is what the realised metrics show
once labels arrive. Regression is not estimated here (NannyML's DLE is out of scope).

Example:
    >>> calibrator = fit_calibrator(proba_labelled, truth, "isotonic")
    >>> estimate(calibrator.apply(proba_new), ["accuracy", "roc_auc"], proba=proba_new)
    {'accuracy': 0.91, 'roc_auc': 0.95}
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

ESTIMATED = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc")
CALIBRATIONS = ("isotonic", "none")


@dataclass(frozen=True)
class Calibrator:
    """Per-class isotonic maps (``thresholds`` -> ``values``), or none (probabilities as they are)."""

    maps: tuple[tuple[np.ndarray, np.ndarray] | None, ...] = ()

    @property
    def applied(self) -> bool:
        """True when some class's probabilities are remapped."""
        return any(m is not None for m in self.maps)

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``(n, k)``, rows summing to 1."""
        import numpy as np

        proba = np.asarray(proba, dtype="float64")
        if not self.maps:
            return proba
        if proba.shape[1] == 2:
            positive = _map(self.maps[1], proba[:, 1]) if self.maps[1] is not None else proba[:, 1]
            return np.column_stack([1.0 - positive, positive])
        out = np.column_stack([proba[:, c] if m is None else _map(m, proba[:, c]) for c, m in enumerate(self.maps)])
        total = out.sum(axis=1, keepdims=True)
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), 1.0 / proba.shape[1])


def fit_calibrator(proba: np.ndarray, truth: np.ndarray, method: str) -> Calibrator:
    """Isotonic maps per class fitted on labelled rows (``truth``: class indices), or none.

    A class never (or always) seen in ``truth`` keeps its probabilities: a map fitted on one
    outcome would say 0 (or 1) whatever the model answered.
    """
    import numpy as np
    from sklearn.isotonic import IsotonicRegression

    if method == "none" or len(truth) == 0:
        return Calibrator()
    proba = np.asarray(proba, dtype="float64")
    maps: list[tuple[np.ndarray, np.ndarray] | None] = []
    for c in range(proba.shape[1]):
        outcome = (truth == c).astype("float64")
        if (proba.shape[1] == 2 and c == 0) or not needs_calibration(proba[:, c], outcome):
            maps.append(None)
            continue
        fitted = IsotonicRegression(out_of_bounds="clip").fit(proba[:, c], outcome)
        maps.append((fitted.X_thresholds_, fitted.y_thresholds_))
    return Calibrator(tuple(maps))


def needs_calibration(score: np.ndarray, outcome: np.ndarray, *, bins: int = 10, splits: int = 10) -> bool:
    """Whether isotonic calibration lowers the expected calibration error of ``score`` for ``outcome``
    (0/1) on held-out rows: ten stratified 90/10 splits, the held-out parts pooled, ECE over ``bins``
    equal-count bins (NannyML's ``needs_calibration``). A class never or always seen, or scores that
    separate it almost perfectly (ROC AUC > 0.999), keep their probabilities."""
    import numpy as np
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedShuffleSplit

    if outcome.min() == outcome.max() or roc_auc_score(outcome, score) > 0.999:
        return False
    if min(np.bincount(outcome.astype(int))) < 2:
        return False  # a split needs two rows of each outcome
    held, raw, calibrated = [], [], []
    for train, test in StratifiedShuffleSplit(n_splits=splits, test_size=0.1, random_state=42).split(score, outcome):
        fitted = IsotonicRegression(out_of_bounds="clip").fit(score[train], outcome[train])
        held.append(outcome[test])
        raw.append(score[test])
        calibrated.append(fitted.predict(score[test]))
    truth = np.concatenate(held)
    return _ece(truth, np.concatenate(raw), bins) > _ece(truth, np.concatenate(calibrated), bins)


def _ece(truth: np.ndarray, score: np.ndarray, bins: int) -> float:
    """Expected calibration error over ``bins`` equal-count bins of the sorted scores (the last bin takes the rest)."""
    import numpy as np

    bins = min(bins, len(score) // 2) or 1
    order = np.argsort(score, kind="stable")
    score, truth = score[order], truth[order]
    width = len(score) // bins
    edges = [*range(0, width * bins, width), len(score)]
    return float(sum((hi - lo) / len(score) * abs(score[lo:hi].mean() - truth[lo:hi].mean())
                     for lo, hi in itertools.pairwise(edges) if hi > lo))


def estimate(calibrated: np.ndarray, metrics: list[str], *, proba: np.ndarray) -> dict[str, float | None]:
    """The expected value of each of ``metrics`` on rows with these calibrated probabilities, ``proba``
    being the model's own (its predicted class the argmax; ``roc_auc`` ranks rows by them).

    None where a metric is undefined (no row expected in a class, one row).
    """
    import numpy as np

    p = np.asarray(calibrated, dtype="float64")
    proba = np.asarray(proba, dtype="float64")
    mine = np.eye(p.shape[1], dtype=bool)[proba.argmax(axis=1)]  # row r predicted class c
    tp = (p * mine).sum(axis=0)
    fp = ((1.0 - p) * mine).sum(axis=0)
    fn = (p * ~mine).sum(axis=0)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    out: dict[str, float | None] = {}
    for name in metrics:
        if name == "accuracy":
            out[name] = float(p[mine].mean()) if len(p) else None
        elif name in ("recall_macro", "balanced_accuracy"):
            out[name] = _mean(recall)
        elif name == "precision_macro":
            out[name] = _mean(precision)
        elif name == "f1_macro":
            out[name] = _mean(f1)
        elif name == "roc_auc":
            out[name] = _roc_auc(p, proba)
        else:
            raise ValueError(f"CBPE estimates {', '.join(ESTIMATED)}, not {name!r}")
    return out


def expected_roc_auc(calibrated: np.ndarray, score: np.ndarray) -> float | None:
    """The expected ROC AUC of one class: rows ranked by the model's own ``score`` for it, each row a
    positive with weight p and a negative with weight 1 - p, p its ``calibrated`` probability
    (NannyML 0.13's ``estimate_roc_auc``; rows with equal scores share one step)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    p = np.asarray(calibrated, dtype="float64")
    if len(p) < 2 or p.sum() <= 0 or (1.0 - p).sum() <= 0:
        return None
    truth = np.r_[np.ones(len(p)), np.zeros(len(p))]
    return float(roc_auc_score(truth, np.r_[score, score], sample_weight=np.r_[p, 1.0 - p]))


def _roc_auc(p: np.ndarray, proba: np.ndarray) -> float | None:
    if p.shape[1] == 2:
        return expected_roc_auc(p[:, 1], proba[:, 1])
    values = [expected_roc_auc(p[:, c], proba[:, c]) for c in range(p.shape[1])]
    return _mean([v for v in values if v is not None])


def _map(fitted: tuple[np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.interp(x, fitted[0], fitted[1])  # IsotonicRegression.predict, out_of_bounds="clip"


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), 0.0)  # as sklearn's zero_division=0


def _mean(values: object) -> float | None:
    import numpy as np

    array = np.asarray(values, dtype="float64")
    array = array[np.isfinite(array)]
    return float(array.mean()) if len(array) else None
