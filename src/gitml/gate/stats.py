# Over 300 lines: every metric kernel and both paired tests share one weighting scheme; apart they would drift.
"""Metrics on label codes and probabilities (or, for regression, numbers and predicted
numbers), and paired tests between two models.

Every metric is written once as a *weighted* kernel: ``kernel(y, proba, weights)`` takes a
``(B, n)`` matrix of row weights and returns ``B`` values. Weights of ones give the plain
metric (the same values :mod:`gitml.evaluate.metrics` writes to ``reports/metrics.json``);
bootstrap resamples are row counts, so 1000 resamples are one vectorised call instead of
1000 scikit-learn calls. A metric that is undefined for a resample (ROC AUC with one
class present) comes out as NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitml.errors import GitmlError

if TYPE_CHECKING:
    import numpy as np

LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})
# Matrix cells per bootstrap chunk: bounds memory at a few tens of MB whatever n is.
_CHUNK_CELLS = 1_000_000


@dataclass
class ComparisonTest:
    """Outcome of a paired test, challenger minus champion."""

    test: str
    difference: float  # in the metric's units; McNemar: the accuracy difference
    ci_low: float | None
    ci_high: float | None
    p_value: float
    n: int  # rows compared
    resamples: int | None = None  # bootstrap resamples where the metric was defined


# ------------------------------------------------------------------- weighted kernels


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
    import numpy as np

    return np.eye(k)[y]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _accuracy(y: np.ndarray, proba: np.ndarray, w: np.ndarray) -> np.ndarray:
    correct = (proba.argmax(axis=1) == y).astype(float)
    return _ratio(w @ correct, w.sum(axis=1))


def _balanced_accuracy(y: np.ndarray, proba: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    truth = _onehot(y, proba.shape[1])
    hits = truth * (proba.argmax(axis=1) == y)[:, None]
    with np.errstate(invalid="ignore"):  # all-NaN rows: no class present at all
        return np.nanmean(_ratio(w @ hits, w @ truth), axis=1)


def _f1_macro(y: np.ndarray, proba: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    k = proba.shape[1]
    truth, pred = _onehot(y, k), _onehot(proba.argmax(axis=1), k)
    tp, fp, fn = w @ (truth * pred), w @ ((1 - truth) * pred), w @ (truth * (1 - pred))
    # scikit-learn's zero_division=0: a class never predicted nor present scores 0.
    return np.nan_to_num(_ratio(2 * tp, 2 * tp + fp + fn), nan=0.0).mean(axis=1)


def _log_loss(y: np.ndarray, proba: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    clipped = np.clip(proba, 1e-15, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    losses = -np.log(clipped[np.arange(len(y)), y])
    return _ratio(w @ losses, w.sum(axis=1))


def _brier(y: np.ndarray, proba: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    errors = np.sum((proba - _onehot(y, proba.shape[1])) ** 2, axis=1)
    return _ratio(w @ errors, w.sum(axis=1))


def _tie_groups(score: np.ndarray, w: np.ndarray, positive: np.ndarray, descending: bool):
    """Weights of positives and negatives per distinct score, scores sorted: (B, G) each."""
    import numpy as np

    order = np.argsort(-score if descending else score, kind="mergesort")
    ordered = score[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    w_sorted, pos_sorted = w[:, order], positive[order].astype(float)
    pos = np.add.reduceat(w_sorted * pos_sorted, starts, axis=1)
    neg = np.add.reduceat(w_sorted, starts, axis=1) - pos
    return pos, neg


def _binary_auc(score: np.ndarray, positive: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    pos, neg = _tie_groups(score, w, positive, descending=False)
    neg_below = np.cumsum(neg, axis=1) - neg
    wins = np.sum(pos * (neg_below + 0.5 * neg), axis=1)  # ties count one half
    return _ratio(wins, pos.sum(axis=1) * neg.sum(axis=1))


def _binary_ap(score: np.ndarray, positive: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    pos, neg = _tie_groups(score, w, positive, descending=True)
    tp = np.cumsum(pos, axis=1)
    precision = np.nan_to_num(_ratio(tp, tp + np.cumsum(neg, axis=1)), nan=0.0)
    return _ratio(np.sum(pos * precision, axis=1), pos.sum(axis=1))


def _ranking(binary: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Binary: the score of class 1. Multiclass: one-vs-rest macro over present classes."""

    def kernel(y: np.ndarray, proba: np.ndarray, w: np.ndarray) -> np.ndarray:
        import numpy as np

        k = proba.shape[1]
        present = (w @ _onehot(y, k)) > 0  # (B, k)
        defined = present.sum(axis=1) >= 2
        if k == 2:
            values = binary(proba[:, 1], y == 1, w)
        else:
            per_class = np.stack([binary(proba[:, c], y == c, w) for c in range(k)], axis=1)
            per_class[~present] = np.nan
            with np.errstate(invalid="ignore"):
                values = np.nanmean(np.where(defined[:, None], per_class, 0.0), axis=1)
        return np.where(defined, values, np.nan)

    return kernel


def _mean(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _ratio(w @ values, w.sum(axis=1))


def _rmse(y: np.ndarray, predicted: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.sqrt(_mean((predicted - y) ** 2, w))


def _mae(y: np.ndarray, predicted: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    return _mean(np.abs(predicted - y), w)


def _r2(y: np.ndarray, predicted: np.ndarray, w: np.ndarray) -> np.ndarray:
    """1 - SSE / SST with the resample's own weighted mean (scikit-learn's r2_score on the resample)."""
    total = w.sum(axis=1)
    center = _ratio(w @ y, total)  # (B,)
    sst = w @ (y**2) - total * center**2  # sum w (y - center)^2, expanded: (B,)
    sse = w @ ((predicted - y) ** 2)
    return 1.0 - _ratio(sse, sst)


REGRESSION_KERNELS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "rmse": _rmse, "mae": _mae, "r2": _r2,
}
_KERNELS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
    "f1_macro": _f1_macro,
    "roc_auc": _ranking(_binary_auc),
    "pr_auc": _ranking(_binary_ap),
    "log_loss": _log_loss,
    "brier": _brier,
    **REGRESSION_KERNELS,
}
METRICS = tuple(_KERNELS)


def _kernel(name: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    if name not in _KERNELS:
        raise GitmlError(f"Unknown gate metric '{name}'. Allowed: {', '.join(METRICS)}.")
    return _KERNELS[name]


def _as_arrays(y: Any, *probas: Any, regression: bool = False) -> tuple[np.ndarray, ...]:
    """Label codes and probability matrices (numbers and predicted numbers when ``regression``),
    checked to fit each other."""
    import numpy as np

    if regression:
        truth = np.asarray(y, dtype=float).ravel()
        out = [truth]
        for predicted in probas:
            values = np.asarray(predicted, dtype=float)
            if values.ndim != 1 or len(values) != len(truth):
                raise GitmlError(f"Predictions of shape {values.shape} do not fit {len(truth)} labels: "
                                 f"expected one number per row, ({len(truth)},).")
            out.append(values)
        return tuple(out)

    codes = np.asarray(y).astype(int).ravel()
    out = [codes]
    for proba in probas:
        matrix = np.asarray(proba, dtype=float)
        if matrix.ndim != 2 or matrix.shape[0] != len(codes) or matrix.shape[1] < 2:
            raise GitmlError(
                f"Probabilities of shape {matrix.shape} do not fit {len(codes)} labels: "
                f"expected ({len(codes)}, k) with k >= 2 classes."
            )
        if len(codes) and (codes.min() < 0 or codes.max() >= matrix.shape[1]):
            raise GitmlError(
                f"Label codes {codes.min()}..{codes.max()} do not fit {matrix.shape[1]} "
                f"probability columns: expected codes 0..{matrix.shape[1] - 1}."
            )
        out.append(matrix)
    return tuple(out)


def metric_function(name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """The metric ``name`` as ``f(y_codes, proba) -> float``; NaN where it is undefined.

    Example:
        >>> auc = metric_function("roc_auc")
        >>> auc(y, proba)  # doctest: +SKIP
        0.93

    Raises:
        GitmlError: ``name`` is not one of :data:`METRICS`.
    """
    kernel, regression = _kernel(name), name in REGRESSION_KERNELS

    def metric(y: np.ndarray, proba: np.ndarray) -> float:
        import numpy as np

        codes, matrix = _as_arrays(y, proba, regression=regression)
        return float(kernel(codes, matrix, np.ones((1, len(codes))))[0])

    metric.__name__ = name
    return metric


def is_regression_metric(name: str) -> bool:
    return name in REGRESSION_KERNELS


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` means a better model."""
    _kernel(name)
    return name not in LOWER_IS_BETTER


# ----------------------------------------------------------------------- paired tests


def paired_bootstrap(
    metric: str,
    y: np.ndarray,
    proba_challenger: np.ndarray,
    proba_champion: np.ndarray,
    n_resamples: int,
    seed: int,
    alpha: float,
) -> ComparisonTest:
    """Paired bootstrap of ``metric(challenger) - metric(champion)`` on the same rows.

    Both models are scored on the same resampled rows, so row difficulty cancels out. The
    confidence interval is the percentile interval at level ``1 - alpha``; the two-sided
    p-value is ``2 * min(P(d <= 0), P(d >= 0))`` with add-one smoothing, so it is never
    below ``2 / (resamples + 1)``. Resamples where the metric is undefined are dropped.

    Example:
        >>> paired_bootstrap("roc_auc", y, p_new, p_old, 1000, seed=0, alpha=0.05)  # doctest: +SKIP
        ComparisonTest(test='bootstrap', difference=0.012, ci_low=0.004, ...)
    """
    import numpy as np

    kernel = _kernel(metric)
    codes, challenger, champion = _as_arrays(y, proba_challenger, proba_champion,
                                             regression=metric in REGRESSION_KERNELS)
    n = len(codes)
    ones = np.ones((1, n))
    difference = float(kernel(codes, challenger, ones)[0] - kernel(codes, champion, ones)[0])
    if not math.isfinite(difference) or n_resamples < 1:
        return ComparisonTest("bootstrap", difference, None, None, 1.0, n, 0)
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    diffs = []
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        rows = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        weights = np.bincount(rows.ravel(), minlength=b * n).reshape(b, n).astype(float)
        diffs.append(kernel(codes, challenger, weights) - kernel(codes, champion, weights))
    d = np.concatenate(diffs)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return ComparisonTest("bootstrap", difference, None, None, 1.0, n, 0)
    low, high = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    below = (1 + np.count_nonzero(d <= 0)) / (len(d) + 1)
    above = (1 + np.count_nonzero(d >= 0)) / (len(d) + 1)
    p_value = min(1.0, 2 * min(below, above))
    return ComparisonTest("bootstrap", difference, float(low), float(high), p_value, n, len(d))


def mcnemar(
    y: np.ndarray, pred_challenger: np.ndarray, pred_champion: np.ndarray
) -> ComparisonTest:
    """McNemar's test on per-row correctness of two classifiers' predicted label codes.

    Exact two-sided binomial test when fewer than 25 rows are discordant, else the
    chi-square test with continuity correction. ``difference`` is the accuracy of the
    challenger minus that of the champion.

    Example:
        >>> mcnemar(y, proba_new.argmax(1), proba_old.argmax(1)).p_value  # doctest: +SKIP
        0.031
    """
    import numpy as np
    from scipy import stats

    truth = np.asarray(y).ravel()
    new, old = np.asarray(pred_challenger).ravel(), np.asarray(pred_champion).ravel()
    if len(new) != len(truth) or len(old) != len(truth):
        raise GitmlError(
            f"McNemar needs one prediction per label: {len(truth)} labels, "
            f"{len(new)} and {len(old)} predictions."
        )
    right_new, right_old = new == truth, old == truth
    only_new = int(np.count_nonzero(right_new & ~right_old))
    only_old = int(np.count_nonzero(~right_new & right_old))
    discordant = only_new + only_old
    n = len(truth)
    difference = (only_new - only_old) / n if n else float("nan")
    if discordant == 0:
        p_value = 1.0
    elif discordant < 25:
        p_value = min(1.0, 2 * float(stats.binom.cdf(min(only_new, only_old), discordant, 0.5)))
    else:
        statistic = (abs(only_new - only_old) - 1) ** 2 / discordant
        p_value = float(stats.chi2.sf(statistic, df=1))
    return ComparisonTest("mcnemar", float(difference), None, None, p_value, n)
