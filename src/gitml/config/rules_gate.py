"""``gate.*`` rules: names the gate can find, bounds a metric can meet, tests that can be significant.

The gate (gate/rules.py) reports a bad rule only when it runs, after training; these
rules name the same mistakes when the config is composed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gitml.config.checks import SPLIT_NAMES, Problems, at_least, positive, share
from gitml.config.rules_fairness import fairness_range
from gitml.config.schema import Config, GateConfig, ThresholdRule

UNIT = (0.0, 1.0)
# What evaluate/metrics.py's classification_metrics and regression_metrics write for a split
# (and, less per_class, for each slice group), with the values each can take.
# tests/unit/test_config.py checks this table against what it really writes.
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "n": (0.0, math.inf), "accuracy": UNIT, "balanced_accuracy": UNIT, "precision_macro": UNIT,
    "recall_macro": UNIT, "f1_macro": UNIT, "roc_auc": UNIT, "pr_auc": UNIT,
    "log_loss": (0.0, math.inf), "brier": (0.0, 2.0),
    "rmse": (0.0, math.inf), "mae": (0.0, math.inf), "r2": (-math.inf, 1.0), "median_ae": (0.0, math.inf),
    "max_error": (0.0, math.inf), "bias": (-math.inf, math.inf),
}
PER_CLASS_RANGES: dict[str, tuple[float, float]] = {
    "precision": UNIT, "recall": UNIT, "f1": UNIT, "support": (0.0, math.inf),
}


def gate_problems(cfg: Config) -> Problems:
    """``gate.*``: the champion stage is a registry stage, every rule can pass and can fail.

    Takes the whole config: stages come from ``registry.stages``, slice columns from
    ``data.slices``.
    """
    gate, stages = cfg.gate, list(cfg.registry.stages)
    problems: Problems = []
    if gate.champion_stage not in stages:
        problems.append(("gate.champion_stage", f"{gate.champion_stage!r} is not a stage of this registry. "
                         f"Allowed: {', '.join(stages)} <registry.stages>."))
    columns = [spec.column for spec in cfg.data.slices]
    for index, rule in enumerate(gate.thresholds):
        problems += threshold_problems(f"gate.thresholds.{index}", rule, columns, list(cfg.data.sensitive))
    problems += _baseline_problems(gate)
    problems += _champion_problems(gate)
    problems += _significance_problems(gate)
    budgets = gate.budgets
    problems += positive("gate.budgets.max_latency_p95_ms", budgets.max_latency_p95_ms, null_ok=True)
    problems += positive("gate.budgets.max_latency_ratio", budgets.max_latency_ratio, null_ok=True)
    problems += positive("gate.budgets.max_bundle_mb", budgets.max_bundle_mb, null_ok=True)
    problems += at_least("gate.budgets.latency_samples", budgets.latency_samples, 1)
    return problems


def metric_range(metric: str, per_group: bool) -> tuple[float, float] | None:
    """The values ``metric`` can take in metrics.json, or None when evaluate never writes it.

    ``per_class.<label>.<name>`` is written per split only, not per slice group.
    """
    if metric in METRIC_RANGES:
        return METRIC_RANGES[metric]
    parts = metric.split(".")
    if not per_group and len(parts) == 3 and parts[0] == "per_class" and parts[1]:
        return PER_CLASS_RANGES.get(parts[2])
    return None


def threshold_problems(key: str, rule: ThresholdRule, columns: list[str], sensitive: Sequence[str] = ()) -> Problems:
    """One ``gate.thresholds.N``: a metric evaluate writes, a split and slice that exist, bounds it can meet.

    ``sensitive``: ``data.sensitive``, the columns a ``fairness.<column>.<name>`` metric may name.
    """
    problems: Problems = []
    if rule.split not in SPLIT_NAMES:
        problems.append((f"{key}.split", f"unknown split {rule.split!r}. Allowed: {', '.join(SPLIT_NAMES)}."))
    if rule.slice not in (None, "*", *columns):
        allowed = ", ".join(["'*'", *columns])
        problems.append((f"{key}.slice", f"{rule.slice!r} is not a data.slices column. Allowed: {allowed} <data.slices>."))
    span, problem = _span(rule, sensitive)
    if problem is not None:
        problems.append((f"{key}.metric", problem))
    if rule.min is None and rule.max is None:
        problems.append((key, "sets neither min nor max, so it checks nothing; set one or remove it."))
    elif rule.min is not None and rule.max is not None and rule.min > rule.max:
        problems.append((f"{key}.min", f"{rule.min:g} is above max {rule.max:g}, so no value can pass."))
    for bound in ("min", "max"):
        value = getattr(rule, bound)
        if span is not None and value is not None and not span[0] <= value <= span[1]:
            within = f"at least {span[0]:g}" if math.isinf(span[1]) else f"between {span[0]:g} and {span[1]:g}"
            problems.append((f"{key}.{bound}", f"must be {within} (the range of {rule.metric}), got {value}."))
    return problems


def _span(rule: ThresholdRule, sensitive: Sequence[str]) -> tuple[tuple[float, float] | None, str | None]:
    """The values ``rule.metric`` can take, or why evaluate never writes it (where the rule looks)."""
    if rule.metric.startswith("fairness."):  # between the groups of its own column: no slice of it
        span, problem = fairness_range(rule.metric, list(sensitive))
        if problem is None and rule.slice is not None:
            return None, "a fairness metric compares the groups of its own column; remove the slice."
        return span, problem
    span = metric_range(rule.metric, per_group=rule.slice is not None)
    if span is not None:
        return span, None
    per_class = "" if rule.slice is not None else ", per_class.<label>.<precision|recall|f1|support>"
    return None, (f"unknown metric {rule.metric!r}{' for a slice' if rule.slice else ''}. "
                  f"Allowed: {', '.join(METRIC_RANGES)}{per_class}, fairness.<data.sensitive column>.<name>.")


def _baseline_problems(gate: GateConfig) -> Problems:
    rule = gate.baseline
    allowed = [m for m in METRIC_RANGES if m != "n"]
    problems: Problems = []
    if rule.metric != "auto" and rule.metric not in allowed:
        problems.append(("gate.baseline.metric", f"unknown metric {rule.metric!r}. "
                         f"Allowed: auto, {', '.join(allowed)}."))
    problems += share("gate.baseline.min_skill", rule.min_skill, exclusive=False)
    return problems


def _champion_problems(gate: GateConfig) -> Problems:
    # gate/stats.py owns the metrics the champion is re-scored with (lazy: config sits below gate).
    from gitml.gate.stats import LOWER_IS_BETTER, METRICS

    rule, problems = gate.champion, []
    if rule.metric != "auto" and rule.metric not in METRICS:
        problems.append(("gate.champion.metric", f"unknown metric {rule.metric!r}. "
                         f"Allowed: auto, {', '.join(METRICS)}."))
    elif rule.metric == "auto" and rule.higher_is_better is False:  # roc_auc and r2 are both higher-is-better
        problems.append(("gate.champion.higher_is_better", "is False, but metric auto (roc_auc, or r2 for "
                         "regression) is higher-is-better; set it to null or true."))
    elif rule.metric != "auto" and rule.higher_is_better is not None and \
            rule.higher_is_better == (rule.metric in LOWER_IS_BETTER):
        natural = "lower" if rule.metric in LOWER_IS_BETTER else "higher"
        problems.append(("gate.champion.higher_is_better", f"is {rule.higher_is_better} but {rule.metric} is "
                         f"{natural}-is-better; set it to {not rule.higher_is_better}."))
    problems += at_least("gate.champion.abs_tolerance", rule.abs_tolerance, 0)
    problems += at_least("gate.champion.rel_tolerance", rule.rel_tolerance, 0)
    return problems


def _significance_problems(gate: GateConfig) -> Problems:
    sig = gate.significance
    problems = share("gate.significance.alpha", sig.alpha)
    problems += at_least("gate.significance.n_resamples", sig.n_resamples, 1)
    if problems or not sig.enabled or getattr(sig.test, "value", sig.test) != "bootstrap":
        return problems
    # stats.paired_bootstrap's p-value is never below 2 / (n_resamples + 1): with fewer
    # resamples than that allows, no difference could ever be significant.
    floor = 2 / (sig.n_resamples + 1)
    if floor >= sig.alpha:
        need = math.floor(2 / sig.alpha)
        while 2 / (need + 1) >= sig.alpha:
            need += 1
        problems.append(("gate.significance.n_resamples", f"the bootstrap's p-value is never below "
                         f"2/(n_resamples+1) = {floor:.3g}, not below alpha {sig.alpha:g}, so nothing could be "
                         f"significant; use at least {need} resamples, got {sig.n_resamples}."))
    return problems
