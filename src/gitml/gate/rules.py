"""Evaluate the promotion gate: every rule of ``gate`` in the config, each reported.

The gate never stops at the first failure and never raises over a missing metric: each
rule becomes one :class:`RuleResult` with a one-sentence reason naming the candidate
value, the baseline where there is one, and the bound, so a pull request comment shows
everything that has to change at once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from gitml.errors import GitmlError
from gitml.gate import stats

if TYPE_CHECKING:
    import numpy as np

    from gitml.config.schema import GateConfig, ThresholdRule

VERDICTS = ("pass", "fail", "skip")


@dataclass
class RuleResult:
    """The outcome of one gate rule."""

    rule: str  # human name: "test.roc_auc >= 0.9"
    kind: str  # threshold | champion | significance | latency | bundle_size
    value: float | None
    bound: str
    verdict: str  # pass | fail | skip
    reason: str


@dataclass
class ChampionEvidence:
    """The champion and the challenger scored on the same rows of the current test split."""

    version: str
    y: np.ndarray  # label codes
    proba_challenger: np.ndarray
    proba_champion: np.ndarray | None  # None when the champion could not be scored (``problem`` says why)
    problem: str | None = None


@dataclass
class GateResult:
    """All rule outcomes; ``verdict`` is ``"pass"`` when no rule failed."""

    verdict: str
    rules: list[RuleResult] = field(default_factory=list)
    champion_version: str | None = None

    def failed(self) -> list[RuleResult]:
        """The rules that failed, in evaluation order."""
        return [r for r in self.rules if r.verdict == "fail"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: verdict, champion version, counts per verdict and every rule."""
        counts = {v: sum(r.verdict == v for r in self.rules) for v in VERDICTS}
        rules = []
        for r in self.rules:
            row, value = asdict(r), r.value
            row["value"] = float(value) if value is not None and math.isfinite(value) else None
            rules.append(row)
        return {
            "verdict": self.verdict,
            "champion_version": self.champion_version,
            "counts": {**counts, "total": len(self.rules)},
            "rules": rules,
        }


def evaluate_gate(
    cfg: GateConfig,
    metrics: dict[str, Any],
    champion: ChampionEvidence | None,
    latency_p95_ms: float | None,
    bundle_mb: float | None,
) -> GateResult:
    """Check a candidate model against every rule of ``cfg``.

    Args:
        cfg: the ``gate`` section of the config.
        metrics: the content of ``reports/metrics.json`` (split sections and ``slices``).
        champion: both models scored on today's test split; None when no version is
            assigned to ``cfg.champion_stage`` yet.
        latency_p95_ms: measured p95 single-row latency; None when not measured.
        bundle_mb: size of the packaged bundle; None when not measured.

    Example:
        >>> result = evaluate_gate(cfg.gate, metrics, None, 3.2, 1.5)  # doctest: +SKIP
        >>> result.verdict, [r.rule for r in result.failed()]  # doctest: +SKIP
        ('fail', ['test.roc_auc >= 0.99'])
    """
    rules: list[RuleResult] = []
    for index, threshold in enumerate(cfg.thresholds):
        rules.extend(_threshold_results(index, threshold, metrics))
    if cfg.champion.enabled:
        rules.append(_champion_result(cfg, champion))
    if cfg.significance.enabled:
        rules.append(_significance_result(cfg, champion))
    rules.extend(_budget_results(cfg, latency_p95_ms, bundle_mb))
    verdict = "fail" if any(r.verdict == "fail" for r in rules) else "pass"
    return GateResult(verdict, rules, champion.version if champion else None)


# ------------------------------------------------------------------------ thresholds


def _fmt(value: float) -> str:
    return f"{value:.4g}"


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
        return fail(f"{label} is {_fmt(value)}, below the minimum {rule.min:g}", value)
    if rule.max is not None and value > rule.max:
        return fail(f"{label} is {_fmt(value)}, above the maximum {rule.max:g}", value)
    reason = f"{label} is {_fmt(value)}, which meets the bound {bound}."
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
        return [_check(label, value, problem, rule, key)]
    # Slices sit at the top of metrics.json; a split section may carry its own.
    split = metrics.get(rule.split)
    own = split.get("slices") if isinstance(split, dict) else None
    slices = own if isinstance(own, dict) else metrics.get("slices") or {}
    label = f"{rule.metric}[{rule.slice}]"
    if rule.slice == "*" and not slices:
        missing = "no slices at all (declare them in data.slices)"
        return [_check(label, None, missing, rule, key)]
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


# ------------------------------------------------------------- champion comparison


def _choice(value: Any) -> str:
    return str(getattr(value, "value", value))  # Enum member or plain string


def _no_champion(name: str, kind: str, bound: str, stage: str) -> RuleResult:
    reason = f"no model is assigned to stage '{stage}' yet: nothing to compare"
    return RuleResult(name, kind, None, bound, "pass", reason)


def _tolerance(cfg: GateConfig, baseline: float) -> float:
    return max(cfg.champion.abs_tolerance, cfg.champion.rel_tolerance * abs(baseline))


def _champion_result(cfg: GateConfig, champion: ChampionEvidence | None) -> RuleResult:
    rule, metric, mode = cfg.champion, cfg.champion.metric, _choice(cfg.champion.mode)
    phrase = "not worse than" if mode == "not_worse" else "better than"
    against = champion.version if champion else f"stage '{cfg.champion_stage}'"
    if champion is None:
        name = f"champion {metric} ({phrase} {against} by > {rule.abs_tolerance:g})"
        return _no_champion(name, "champion", f"{phrase} the champion", cfg.champion_stage)

    def fail(reason: str) -> RuleResult:
        name = f"champion {metric} ({phrase} {against} by > {rule.abs_tolerance:g})"
        return RuleResult(name, "champion", None, "n/a", "fail", reason)

    if champion.problem is not None or champion.proba_champion is None:
        return fail(f"the champion could not be scored: {champion.problem}")
    if mode not in ("not_worse", "better"):
        return fail(f"gate.champion.mode is '{mode}'; allowed: not_worse, better.")
    try:
        natural = stats.higher_is_better(metric)
        score = stats.metric_function(metric)
        new = score(champion.y, champion.proba_challenger)
        old = score(champion.y, champion.proba_champion)
    except GitmlError as error:
        return fail(f"gate.champion: {error}")
    if natural != rule.higher_is_better:
        return fail(
            f"gate.champion.higher_is_better is {rule.higher_is_better} but {metric} is "
            f"{'higher' if natural else 'lower'}-is-better; fix the config."
        )
    if not (math.isfinite(new) and math.isfinite(old)):
        return fail(f"{metric} is undefined on the test split (challenger {new}, champion {old}).")
    tol = _tolerance(cfg, old)
    name = f"champion {metric} ({phrase} {champion.version} by > {_fmt(tol)})"
    sign = 1.0 if rule.higher_is_better else -1.0
    gain = sign * (new - old)  # > 0: the challenger is better
    if mode == "not_worse":
        ok = gain >= -tol
        op, limit = (">=" if sign > 0 else "<="), old - sign * tol
        tail = f"{'within' if ok else 'more than'} the tolerance {_fmt(tol)}"
    else:
        ok = gain > tol
        op, limit = (">" if sign > 0 else "<"), old + sign * tol
        tail = f"{'more' if ok else 'not more'} than the required margin {_fmt(tol)}"
    reason = (
        f"challenger {metric} {_fmt(new)} vs champion {champion.version} {_fmt(old)}: "
        f"{'better' if gain >= 0 else 'worse'} by {_fmt(abs(gain))}, {tail}."
    )
    verdict = "pass" if ok else "fail"
    return RuleResult(name, "champion", new, f"{op} {_fmt(limit)}", verdict, reason)


def _significance_result(cfg: GateConfig, champion: ChampionEvidence | None) -> RuleResult:
    sig, mode, test = cfg.significance, _choice(cfg.champion.mode), _choice(cfg.significance.test)
    metric = cfg.champion.metric if test == "bootstrap" else "accuracy"
    name = f"significance: {test} on {metric} (alpha {sig.alpha:g})"
    if mode == "better":
        bound = f"p < {sig.alpha:g} and better"
    else:
        bound = f"no significant drop (alpha {sig.alpha:g})"
    if champion is None:
        return _no_champion(name, "significance", bound, cfg.champion_stage)

    def result(verdict: str, reason: str, value: float | None = None) -> RuleResult:
        return RuleResult(name, "significance", value, bound, verdict, reason)

    if champion.problem is not None or champion.proba_champion is None:
        return result("fail", f"the champion could not be scored: {champion.problem}")
    if test not in ("bootstrap", "mcnemar"):
        return result("fail", f"gate.significance.test is '{test}'; allowed: bootstrap, mcnemar.")
    if mode not in ("not_worse", "better"):
        return result("fail", f"gate.champion.mode is '{mode}'; allowed: not_worse, better.")
    import numpy as np

    try:  # the baseline first: it checks that labels and probabilities fit together
        baseline = stats.metric_function(metric)(champion.y, champion.proba_champion)
        if test == "bootstrap":
            outcome = stats.paired_bootstrap(
                metric, champion.y, champion.proba_challenger, champion.proba_champion,
                sig.n_resamples, sig.seed, sig.alpha,
            )
            sign = 1.0 if cfg.champion.higher_is_better else -1.0
        else:
            outcome = stats.mcnemar(
                champion.y, np.asarray(champion.proba_challenger).argmax(axis=1),
                np.asarray(champion.proba_champion).argmax(axis=1),
            )
            sign = 1.0
    except GitmlError as error:
        return result("fail", f"gate.champion: {error}")
    if not math.isfinite(outcome.difference):
        return result("skip", f"{metric} is undefined on the test split, so no test was run.")
    tol = _tolerance(cfg, baseline)
    gain = sign * outcome.difference  # > 0: the challenger is better
    significant = outcome.p_value < sig.alpha
    worse_beyond_tolerance = significant and gain < 0 and -gain > tol
    if mode == "better":
        ok = significant and gain > 0
        finding = "significantly better" if ok else "not significantly better"
    else:
        ok = not worse_beyond_tolerance
        if worse_beyond_tolerance:
            finding = f"significantly worse by more than the tolerance {_fmt(tol)}"
        elif significant and gain < 0:
            finding = f"significantly worse, but within the tolerance {_fmt(tol)}"
        else:
            finding = "significantly better" if significant else "no significant difference"
    ci = ""
    if outcome.ci_low is not None and outcome.ci_high is not None:
        ci = f", {1 - sig.alpha:.0%} CI [{_fmt(outcome.ci_low)}, {_fmt(outcome.ci_high)}]"
    reason = (
        f"{test} on {metric}, challenger minus champion {champion.version}: "
        f"{outcome.difference:+.4g}{ci}, p = {_fmt(outcome.p_value)} "
        f"{'<' if significant else '>='} alpha {sig.alpha:g}: {finding}."
    )
    return result("pass" if ok else "fail", reason, outcome.p_value)


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
    reason = f"{what} is {_fmt(value)} {unit}, {relation} the budget {limit:g} {unit} ({key})."
    return RuleResult(rule, kind, float(value), bound, "pass" if ok else "fail", reason)


def _budget_results(
    cfg: GateConfig, latency: float | None, bundle: float | None
) -> list[RuleResult]:
    budgets, out = cfg.budgets, []
    if budgets.max_latency_p95_ms is not None:
        key = "gate.budgets.max_latency_p95_ms"
        out.append(_budget("latency", latency, budgets.max_latency_p95_ms, "ms", key))
    if budgets.max_bundle_mb is not None:
        key = "gate.budgets.max_bundle_mb"
        out.append(_budget("bundle_size", bundle, budgets.max_bundle_mb, "MB", key))
    return out
