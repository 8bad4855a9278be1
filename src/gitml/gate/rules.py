"""Evaluate the promotion gate: every rule of ``gate`` in the config, each reported.

The gate never stops at the first failure and never raises over a missing metric: each
rule becomes one :class:`RuleResult` with a one-sentence reason naming the candidate
value, the baseline where there is one, and the bound, so a pull request comment shows
everything that has to change at once.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from gitml.gate.baseline import baseline_result, metrics_task
from gitml.gate.champion import champion_result, significance_result
from gitml.gate.fairness import fairness_result
from gitml.gate.result import ChampionEvidence, GateResult, LatencyEvidence, RuleResult, fmt

if TYPE_CHECKING:
    from gitml.config.schema import GateConfig, ThresholdRule

__all__ = ["ChampionEvidence", "GateResult", "LatencyEvidence", "RuleResult", "evaluate_gate"]

def evaluate_gate(
    cfg: GateConfig,
    metrics: dict[str, Any],
    champion: ChampionEvidence | None,
    latency: LatencyEvidence | None,
    bundle_mb: float | None,
) -> GateResult:
    """Check a candidate model against every rule of ``cfg``.

    Args:
        cfg: the ``gate`` section of the config.
        metrics: the content of ``reports/metrics.json`` (split sections, ``slices`` and
            the dummy model's ``baseline``).
        champion: both models scored on today's test split; None when no version is
            assigned to ``cfg.champion_stage`` yet.
        latency: measured p95 single-row latencies; None when not measured.
        bundle_mb: size of the packaged bundle; None when not measured.

    Example:
        >>> result = evaluate_gate(cfg.gate, metrics, None, None, 1.5)  # doctest: +SKIP
        >>> result.verdict, [r.rule for r in result.failed()]  # doctest: +SKIP
        ('fail', ['test.roc_auc >= 0.99'])
    """
    rules: list[RuleResult] = []
    task = metrics_task(metrics)
    if cfg.baseline.enabled:
        rules.append(baseline_result(cfg, metrics))
    for index, threshold in enumerate(cfg.thresholds):
        rules.extend(_threshold_results(index, threshold, metrics))
    if cfg.champion.enabled:
        rules.append(champion_result(cfg, champion, task))
    if cfg.significance.enabled:
        rules.append(significance_result(cfg, champion, task))
    rules.extend(_budget_results(cfg, champion, latency, bundle_mb))
    verdict = "fail" if any(r.verdict == "fail" for r in rules) else "pass"
    return GateResult(verdict, rules, champion.version if champion else None)


# ------------------------------------------------------------------------ thresholds


def _lookup(section: Any, path: str, root: str) -> tuple[Any, str | None]:
    """Follow a dotted path through nested dicts: (value, None) or (None, what is missing)."""
    node, walked = section, [root]
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            where = f"'{'.'.join(walked)}'"
            available = ", ".join(map(str, node)) if isinstance(node, dict) else "nothing"
            return None, f"no '{part}' under {where}; available: {available or 'nothing'}"
        node = node[part]
        walked.append(part)
    return node, None


def _bound_text(rule: ThresholdRule) -> str:
    if rule.min is not None and rule.max is not None:
        return f"between {rule.min:g} and {rule.max:g}"
    return f">= {rule.min:g}" if rule.min is not None else f"<= {rule.max:g}"


def _rule_name(label: str, rule: ThresholdRule) -> str:
    if rule.min is not None and rule.max is not None:
        return f"{rule.min:g} <= {label} <= {rule.max:g}"
    return f"{label} {_bound_text(rule)}"


def _check(
    label: str, value: Any, problem: str | None, rule: ThresholdRule, key: str
) -> RuleResult:
    """One threshold on one value; ``problem`` says why there is no value."""
    name, bound = _rule_name(label, rule), _bound_text(rule)

    def fail(reason: str, number: float | None = None) -> RuleResult:
        return RuleResult(name, "threshold", number, bound, "fail", f"{reason} ({key}).")

    if problem is not None:
        return fail(f"{label} is missing from the metrics: {problem}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return fail(f"{label} is not a number but {type(value).__name__} {str(value)[:60]}")
    value = float(value)
    if math.isnan(value):
        return fail(f"{label} is NaN, so it cannot meet {bound}", value)
    if rule.min is not None and value < rule.min:
        return fail(f"{label} is {fmt(value)}, below the minimum {rule.min:g}", value)
    if rule.max is not None and value > rule.max:
        return fail(f"{label} is {fmt(value)}, above the maximum {rule.max:g}", value)
    reason = f"{label} is {fmt(value)}, which meets the bound {bound}."
    return RuleResult(name, "threshold", value, bound, "pass", reason)


def _threshold_results(
    index: int, rule: ThresholdRule, metrics: dict[str, Any]
) -> list[RuleResult]:
    """One result per threshold, or one per slice group when the rule names a slice."""
    key = f"gate.thresholds.{index}"
    if rule.min is None and rule.max is None:
        name = f"{rule.split}.{rule.metric}"
        reason = f"{key} sets neither min nor max, so it checks nothing; set one or remove it."
        return [RuleResult(name, "threshold", None, "none", "fail", reason)]
    if rule.slice is None:
        label = f"{rule.split}.{rule.metric}"
        if not isinstance(metrics.get(rule.split), dict):
            missing = f"no split '{rule.split}'; available: {', '.join(metrics) or 'nothing'}"
            return [_check(label, None, missing, rule, key)]
        value, problem = _lookup(metrics[rule.split], rule.metric, rule.split)
        result = _check(label, value, problem, rule, key)
        if rule.metric.startswith("fairness."):
            result = fairness_result(result, metrics[rule.split], rule.metric, key)
        return [result]
    # Slices sit at the top of metrics.json; a split section may carry its own.
    split = metrics.get(rule.split)
    own = split.get("slices") if isinstance(split, dict) else None
    slices = own if isinstance(own, dict) else metrics.get("slices") or {}
    label = f"{rule.metric}[{rule.slice}]"
    if rule.slice == "*" and not slices:  # a rule for every slice holds for none declared
        reason = f"no slices are declared (data.slices), so there is no group to check ({key})."
        return [RuleResult(_rule_name(label, rule), "threshold", None, _bound_text(rule), "skip", reason)]
    columns = list(slices) if rule.slice == "*" else [rule.slice]
    results = []
    for column in columns:
        groups = slices.get(column)
        if not isinstance(groups, dict) or not groups:
            missing = f"no slice column '{column}'; available: {', '.join(slices) or 'nothing'}"
            results.append(_check(f"{rule.metric}[{column}]", None, missing, rule, key))
            continue
        for group, group_metrics in groups.items():
            value, problem = _lookup(group_metrics, rule.metric, f"slices.{column}.{group}")
            if problem is not None and rule.metric in ("roc_auc", "pr_auc"):
                problem += " (undefined when the group holds one class only)"
            results.append(_check(f"{rule.metric}[{column}={group}]", value, problem, rule, key))
    return results


# -------------------------------------------------------------------------- budgets


def _budget(kind: str, value: float | None, limit: float, unit: str, key: str) -> RuleResult:
    what = "latency p95" if kind == "latency" else "bundle size"
    bound = f"<= {limit:g} {unit}"
    rule = f"{what} {bound}"
    if value is None:
        reason = f"{what} was not measured; the budget is {limit:g} {unit} ({key})."
        return RuleResult(rule, kind, None, bound, "fail", reason)
    ok = value <= limit
    relation = "within" if ok else "over"
    reason = f"{what} is {fmt(value)} {unit}, {relation} the budget {limit:g} {unit} ({key})."
    return RuleResult(rule, kind, float(value), bound, "pass" if ok else "fail", reason)


def _budget_results(
    cfg: GateConfig, champion: ChampionEvidence | None, latency: LatencyEvidence | None, bundle: float | None
) -> list[RuleResult]:
    budgets, out = cfg.budgets, []
    if budgets.max_latency_p95_ms is not None:
        key = "gate.budgets.max_latency_p95_ms"
        measured = latency.p95_ms if latency else None
        out.append(_budget("latency", measured, budgets.max_latency_p95_ms, "ms", key))
    if budgets.max_latency_ratio is not None:
        out.append(_latency_ratio(budgets.max_latency_ratio, champion, latency))
    if budgets.max_bundle_mb is not None:
        key = "gate.budgets.max_bundle_mb"
        out.append(_budget("bundle_size", bundle, budgets.max_bundle_mb, "MB", key))
    return out


def _latency_ratio(limit: float, champion: ChampionEvidence | None, latency: LatencyEvidence | None) -> RuleResult:
    """The challenger's p95 over the champion's, both measured in this run."""
    key, bound = "gate.budgets.max_latency_ratio", f"<= {limit:g}x"
    rule = f"latency p95 vs the champion {bound}"
    if champion is None:
        reason = (f"no champion to compare latency with ({key}); "
                  "gate.budgets.max_latency_p95_ms sets an absolute budget.")
        return RuleResult(rule, "latency_ratio", None, bound, "skip", reason)
    ratio = latency.ratio if latency else None
    if latency is None or ratio is None:
        reason = f"the champion {champion.version} could not be measured, so there is nothing to compare ({key})."
        return RuleResult(rule, "latency_ratio", None, bound, "skip", reason)
    ok = ratio <= limit
    reason = (f"latency p95 {fmt(latency.p95_ms)} ms vs the champion {champion.version}'s "
              f"{fmt(latency.champion_p95_ms or 0.0)} ms in the same run: {fmt(ratio)}x, "
              f"{'within' if ok else 'over'} the budget {limit:g}x ({key}).")
    return RuleResult(rule, "latency_ratio", ratio, bound, "pass" if ok else "fail", reason)
