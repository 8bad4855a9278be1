"""The champion rules of the gate: the challenger against the model in ``gate.champion_stage``.

Both are scored on the same current test rows (:class:`~gitml.gate.rules.ChampionEvidence`):
``champion`` compares one metric within a tolerance, ``significance`` runs a paired test
(bootstrap on the metric, or McNemar on accuracy) so a difference within noise does not
decide a promotion.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from gitml.errors import GitmlError
from gitml.gate import stats
from gitml.gate.baseline import resolve_metric
from gitml.gate.result import ChampionEvidence, RuleResult, fmt

if TYPE_CHECKING:
    from gitml.config.schema import GateConfig


def _choice(value: Any) -> str:
    return str(getattr(value, "value", value))  # Enum member or plain string


def _no_champion(name: str, kind: str, bound: str, stage: str) -> RuleResult:
    reason = f"no model is assigned to stage '{stage}' yet: nothing to compare"
    return RuleResult(name, kind, None, bound, "pass", reason)


def _tolerance(cfg: GateConfig, baseline: float) -> float:
    return max(cfg.champion.abs_tolerance, cfg.champion.rel_tolerance * abs(baseline))


def champion_metric(cfg: GateConfig, task: str) -> tuple[str, bool]:
    """The metric the champion rules compare (``auto`` resolved for ``task``) and whether higher is better."""
    metric = resolve_metric(cfg.champion.metric, task, "champion")
    natural = metric not in stats.LOWER_IS_BETTER
    return metric, natural if cfg.champion.higher_is_better is None else bool(cfg.champion.higher_is_better)


def champion_result(cfg: GateConfig, champion: ChampionEvidence | None, task: str = "binary") -> RuleResult:
    rule, mode = cfg.champion, _choice(cfg.champion.mode)
    metric, higher = champion_metric(cfg, task)
    phrase = "not worse than" if mode == "not_worse" else "better than"
    against = champion.version if champion else f"stage '{cfg.champion_stage}'"
    if champion is None:
        name = f"champion {metric} ({phrase} {against} by > {rule.abs_tolerance:g})"
        return _no_champion(name, "champion", f"{phrase} the champion", cfg.champion_stage)

    def fail(reason: str, verdict: str = "fail") -> RuleResult:
        name = f"champion {metric} ({phrase} {against} by > {rule.abs_tolerance:g})"
        return RuleResult(name, "champion", None, "n/a", verdict, reason)

    if champion.incomparable:
        return fail(_incomparable(champion), "skip")
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
    if natural != higher:
        return fail(
            f"gate.champion.higher_is_better is {higher} but {metric} is "
            f"{'higher' if natural else 'lower'}-is-better; fix the config."
        )
    if not (math.isfinite(new) and math.isfinite(old)):
        return fail(f"{metric} is undefined on the test split (challenger {new}, champion {old}).")
    tol = _tolerance(cfg, old)
    name = f"champion {metric} ({phrase} {champion.version} by > {fmt(tol)})"
    sign = 1.0 if higher else -1.0
    gain = sign * (new - old)  # > 0: the challenger is better
    if mode == "not_worse":
        ok = gain >= -tol
        op, limit = (">=" if sign > 0 else "<="), old - sign * tol
        tail = f"{'within' if ok else 'more than'} the tolerance {fmt(tol)}"
    else:
        ok = gain > tol
        op, limit = (">" if sign > 0 else "<"), old + sign * tol
        tail = f"{'more' if ok else 'not more'} than the required margin {fmt(tol)}"
    reason = (
        f"challenger {metric} {fmt(new)} vs champion {champion.version} {fmt(old)}: "
        f"{'better' if gain >= 0 else 'worse'} by {fmt(abs(gain))}, {tail}."
    )
    verdict = "pass" if ok else "fail"
    return RuleResult(name, "champion", new, f"{op} {fmt(limit)}", verdict, reason)


def significance_result(cfg: GateConfig, champion: ChampionEvidence | None, task: str = "binary") -> RuleResult:
    sig, mode, test = cfg.significance, _choice(cfg.champion.mode), _choice(cfg.significance.test)
    compared, higher = champion_metric(cfg, task)
    metric = compared if test == "bootstrap" else "accuracy"
    name = f"significance: {test} on {metric} (alpha {sig.alpha:g})"
    if mode == "better":
        bound = f"p < {sig.alpha:g} and better"
    else:
        bound = f"no significant drop (alpha {sig.alpha:g})"
    if champion is None:
        return _no_champion(name, "significance", bound, cfg.champion_stage)

    def result(verdict: str, reason: str, value: float | None = None) -> RuleResult:
        return RuleResult(name, "significance", value, bound, verdict, reason)

    if champion.incomparable:
        return result("skip", _incomparable(champion))
    if champion.problem is not None or champion.proba_champion is None:
        return result("fail", f"the champion could not be scored: {champion.problem}")
    if test not in ("bootstrap", "mcnemar"):
        return result("fail", f"gate.significance.test is '{test}'; allowed: bootstrap, mcnemar.")
    if mode not in ("not_worse", "better"):
        return result("fail", f"gate.champion.mode is '{mode}'; allowed: not_worse, better.")
    if test == "mcnemar" and task == "regression":
        return result("fail", "gate.significance.test is mcnemar, which compares class predictions; "
                              "a regression model is compared with test=bootstrap.")
    import numpy as np

    try:  # the baseline first: it checks that labels and probabilities fit together
        baseline = stats.metric_function(metric)(champion.y, champion.proba_champion)
        if test == "bootstrap":
            outcome = stats.paired_bootstrap(
                metric, champion.y, champion.proba_challenger, champion.proba_champion,
                sig.n_resamples, sig.seed, sig.alpha,
            )
            sign = 1.0 if higher else -1.0
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
    ok, finding = _finding(mode, significant, gain, tol)
    ci = ""
    if outcome.ci_low is not None and outcome.ci_high is not None:
        ci = f", {1 - sig.alpha:.0%} CI [{fmt(outcome.ci_low)}, {fmt(outcome.ci_high)}]"
    reason = (
        f"{test} on {metric}, challenger minus champion {champion.version}: "
        f"{outcome.difference:+.4g}{ci}, p = {fmt(outcome.p_value)} "
        f"{'<' if significant else '>='} alpha {sig.alpha:g}: {finding}."
    )
    return result("pass" if ok else "fail", reason, outcome.p_value)


def _incomparable(champion: ChampionEvidence) -> str:
    return (f"{champion.problem}: the two answer different questions, so there is nothing to compare "
            "(the baseline rule still applies, and promotion bumps the major version for the new interface)")


def _finding(mode: str, significant: bool, gain: float, tol: float) -> tuple[bool, str]:
    """Does the test pass in ``mode``, and what it found (``gain`` > 0: the challenger is better)."""
    if mode == "better":
        ok = significant and gain > 0
        return ok, "significantly better" if ok else "not significantly better"
    if significant and gain < 0 and -gain > tol:
        return False, f"significantly worse by more than the tolerance {fmt(tol)}"
    if significant and gain < 0:
        return True, f"significantly worse, but within the tolerance {fmt(tol)}"
    return True, "significantly better" if significant else "no significant difference"
