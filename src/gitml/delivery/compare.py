"""Canary against stable on live rows: the comparisons and the verdict (pure: no files, no git).

Each version's rows are the request-log rows it answered; the split hashes a request key, so
both see the same traffic distribution and their predictions and labelled metrics can be
compared as two independent samples:

- **prediction drift**: classification, a chi-squared test on the predicted class counts;
  regression, a two-sample Kolmogorov-Smirnov test on the predicted numbers; both with the
  population stability index (PSI) of the canary's predictions against the stable version's
  (classes, or the stable predictions' deciles) as the effect size.
- **labelled metric** (rows with feedback): the gate's metric kernels (gitml.gate.stats) in a
  two-sample bootstrap, canary minus stable, percentile interval and two-sided p-value as the
  gate's paired bootstrap computes them; the two versions answered different rows, so each
  is resampled on its own.
- **latency** (when the server's /metrics was read): mean predict time, canary over stable.

A check fails when it is significant (p < ``canary.alpha``) and past its limit; past a hard
limit it is "hard", which ``canary.apply_rollback`` acts on directly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from gitml.config.schema import CanaryConfig

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Verdict = Literal["promote", "rollback", "wait"]
PSI_FLOOR = 1e-4  # a share of 0 in one version would make PSI infinite


@dataclass
class Check:
    """One comparison of the canary with the stable version."""

    name: str  # prediction_drift | metric:<name> | latency | error_rate
    stable: float | None
    canary: float | None
    effect: float | None  # PSI, canary minus stable (in the metric's "worse" direction: a drop), or the ratio
    p_value: float | None
    limit: float
    hard_limit: float
    failed: bool = False
    hard: bool = False
    note: str = ""

    def sentence(self) -> str:
        if self.note:
            return f"{self.name}: {self.note}"
        p = "" if self.p_value is None else f", p={self.p_value:.3g}"
        state = "past the HARD limit" if self.hard else ("past the limit" if self.failed else "within the limit")
        return (f"{self.name}: stable {_fmt(self.stable)}, canary {_fmt(self.canary)}, effect {_fmt(self.effect)}"
                f"{p}; {state} {_fmt(self.limit)} (hard {_fmt(self.hard_limit)})")


@dataclass
class Comparison:
    """The verdict on one canary version, with every check and why."""

    stable: str
    canary: str
    verdict: Verdict
    rows: dict[str, int]  # version -> logged rows in the window
    labelled: dict[str, int]  # version -> rows with a label
    checks: list[Check] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def hard(self) -> bool:
        return any(check.hard for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hard"] = self.hard
        return data


def compare(stable: str, canary: str, rows: pd.DataFrame, labels: pd.DataFrame, cfg: CanaryConfig, *,
            regression: bool, latency: dict[str, float] | None = None,
            errors: dict[str, tuple[int, int]] | None = None) -> Comparison:
    """Judge ``canary`` against ``stable`` on the request-log ``rows`` (``model_version``, ``prediction``,
    ``proba_*``) and ``labels`` (the same rows' ``model_version``, ``prediction``, ``proba_*`` and ``label``,
    one per labelled row). ``latency``: mean predict seconds per version, ``errors``: (failed, predictions)
    per version, when known (the server's /metrics)."""
    counts = {v: int((rows["model_version"] == v).sum()) for v in (stable, canary)}
    labelled = {v: int((labels["model_version"] == v).sum()) for v in (stable, canary)}
    result = Comparison(stable, canary, "wait", counts, labelled)
    short = [f"{v} answered {n} rows in the window, fewer than canary.min_rows={cfg.min_rows}"
             for v, n in counts.items() if n < cfg.min_rows]
    if short:
        result.reasons = short
        return result
    mine = rows[rows["model_version"] == canary]
    theirs = rows[rows["model_version"] == stable]
    result.checks.append(prediction_drift(theirs, mine, cfg, regression))
    if min(labelled.values()) >= cfg.min_labels:
        result.checks.append(metric_check(labels[labels["model_version"] == stable],
                                          labels[labels["model_version"] == canary], cfg, regression))
    else:
        result.reasons.append(f"labelled metrics not compared: {labelled[stable]} and {labelled[canary]} labelled "
                              f"rows, fewer than canary.min_labels={cfg.min_labels}")
    if latency and stable in latency and canary in latency:
        result.checks.append(latency_check(latency[stable], latency[canary], cfg))
    if errors and errors.get(stable, (0, 0))[1] and errors.get(canary, (0, 0))[1]:
        result.checks.append(error_check(errors[stable], errors[canary], cfg))
    failed = [check for check in result.checks if check.failed]
    result.verdict = "rollback" if failed else "promote"
    result.reasons = [check.sentence() for check in (failed or result.checks)] + result.reasons
    return result


def prediction_drift(stable: pd.DataFrame, canary: pd.DataFrame, cfg: CanaryConfig, regression: bool) -> Check:
    import numpy as np
    from scipy import stats

    if regression:
        old = stable["prediction"].to_numpy(dtype=float)
        new = canary["prediction"].to_numpy(dtype=float)
        edges = np.unique(np.quantile(old, np.linspace(0, 1, 11)[1:-1]))
        old_counts = np.bincount(np.searchsorted(edges, old), minlength=len(edges) + 1)
        new_counts = np.bincount(np.searchsorted(edges, new), minlength=len(edges) + 1)
        p_value = float(stats.ks_2samp(old, new).pvalue)
        values: tuple[float | None, float | None] = (float(old.mean()), float(new.mean()))
    else:
        classes = sorted(set(stable["prediction"].astype(str)) | set(canary["prediction"].astype(str)))
        old_counts = stable["prediction"].astype(str).value_counts().reindex(classes, fill_value=0).to_numpy()
        new_counts = canary["prediction"].astype(str).value_counts().reindex(classes, fill_value=0).to_numpy()
        table = np.vstack([old_counts, new_counts])
        table = table[:, table.sum(axis=0) > 0]
        p_value = 1.0 if table.shape[1] < 2 else float(stats.chi2_contingency(table).pvalue)
        values = (None, None)
    effect = psi(old_counts, new_counts)
    check = Check("prediction_drift", *values, effect, p_value, cfg.max_prediction_psi, cfg.hard_prediction_psi)
    significant = p_value < cfg.alpha
    check.failed = significant and effect > cfg.max_prediction_psi
    check.hard = significant and effect > cfg.hard_prediction_psi
    return check


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of ``actual`` counts against ``expected`` counts (same bins)."""
    import numpy as np

    e = np.maximum(np.asarray(expected, dtype=float) / max(1, np.sum(expected)), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float) / max(1, np.sum(actual)), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def metric_name(cfg: CanaryConfig, regression: bool) -> str:
    if cfg.metric == "auto":
        return "rmse" if regression else "accuracy"
    return cfg.metric


def metric_check(stable: pd.DataFrame, canary: pd.DataFrame, cfg: CanaryConfig, regression: bool) -> Check:
    """The labelled metric of each version and a two-sample bootstrap of canary minus stable."""
    from gitml.gate.stats import higher_is_better

    name = metric_name(cfg, regression)
    old, new = _scores(stable, regression), _scores(canary, regression)
    test = two_sample_bootstrap(name, old, new, cfg.resamples, cfg.seed, cfg.alpha)
    sign = 1.0 if higher_is_better(name) else -1.0
    drop = -sign * test["difference"]  # how much worse the canary is (positive: worse)
    check = Check(f"metric:{name}", test["stable"], test["canary"], drop, test["p_value"],
                  cfg.max_metric_drop, cfg.hard_metric_drop)
    significant = test["p_value"] < cfg.alpha and math.isfinite(drop) and drop > 0
    check.failed = significant and drop > cfg.max_metric_drop
    check.hard = significant and drop > cfg.hard_metric_drop
    return check


def _scores(frame: pd.DataFrame, regression: bool) -> tuple[np.ndarray, np.ndarray]:
    """Label codes and probability matrix (regression: labels and predictions) of labelled rows."""
    import numpy as np

    from gitml.monitor.logs import class_key

    if regression:
        return frame["label"].to_numpy(dtype=float), frame["prediction"].to_numpy(dtype=float)
    columns = sorted(c for c in frame.columns if c.startswith("proba_"))
    index = {class_key(c.removeprefix("proba_")): i for i, c in enumerate(columns)}
    codes = np.array([index.get(class_key(label), -1) for label in frame["label"]])
    keep = codes >= 0  # a label the model has no class for cannot be scored
    return codes[keep], frame.loc[keep, columns].to_numpy(dtype=float)


def two_sample_bootstrap(metric: str, stable: tuple[np.ndarray, np.ndarray], canary: tuple[np.ndarray, np.ndarray],
                         resamples: int, seed: int, alpha: float) -> dict[str, float]:
    """``metric(canary) - metric(stable)`` on two independent samples, each resampled on its own.

    The percentile interval at ``1 - alpha`` and the two-sided p-value ``2 * min(P(d <= 0), P(d >= 0))``
    with add-one smoothing, as :func:`gitml.gate.stats.paired_bootstrap` computes them.
    """
    import numpy as np

    from gitml.gate.stats import metric_function

    score = metric_function(metric)
    rng = np.random.default_rng(seed)
    old, new = score(*stable), score(*canary)
    diffs = np.empty(resamples)
    for i in range(resamples):
        a = rng.integers(0, len(stable[0]), len(stable[0]))
        b = rng.integers(0, len(canary[0]), len(canary[0]))
        diffs[i] = score(canary[0][b], canary[1][b]) - score(stable[0][a], stable[1][a])
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) == 0:
        return {"stable": old, "canary": new, "difference": new - old, "p_value": 1.0, "ci_low": math.nan,
                "ci_high": math.nan}
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    below = (1 + np.count_nonzero(diffs <= 0)) / (len(diffs) + 1)
    above = (1 + np.count_nonzero(diffs >= 0)) / (len(diffs) + 1)
    return {"stable": old, "canary": new, "difference": new - old, "p_value": min(1.0, 2 * min(below, above)),
            "ci_low": float(low), "ci_high": float(high)}


def latency_check(stable: float, canary: float, cfg: CanaryConfig) -> Check:
    ratio = canary / stable if stable > 0 else math.inf
    check = Check("latency", stable, canary, ratio, None, cfg.max_latency_ratio, cfg.hard_latency_ratio)
    check.failed, check.hard = ratio > cfg.max_latency_ratio, ratio > cfg.hard_latency_ratio
    return check


def error_check(stable: tuple[int, int], canary: tuple[int, int], cfg: CanaryConfig) -> Check:
    """The canary's share of failed predictions against stable's: Fisher's exact test (one-sided,
    the canary failing more) on the 2x2 table, and the increase in share as the effect."""
    from scipy import stats

    old, new = stable[0] / stable[1], canary[0] / canary[1]
    table = [[canary[0], canary[1] - canary[0]], [stable[0], stable[1] - stable[0]]]
    p_value = float(stats.fisher_exact(table, alternative="greater").pvalue)
    increase = new - old
    check = Check("error_rate", old, new, increase, p_value, cfg.max_error_rate_increase, cfg.hard_error_rate_increase)
    significant = p_value < cfg.alpha
    check.failed = significant and increase > cfg.max_error_rate_increase
    check.hard = significant and increase > cfg.hard_error_rate_increase
    return check


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
