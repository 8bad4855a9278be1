"""The baseline rule: the candidate must beat a model that learned nothing, by a margin.

evaluate writes the dummy's scores beside the model's (``metrics.json`` ``baseline``: the
training split's class prior predicted for every test row; for regression its mean label).
The rule asks for a *skill*:
the share of the way from the dummy's score to a perfect one the candidate covers, so one
default fits any data set: 0.1 on ROC AUC means at least 0.55, on a balanced accuracy
whose dummy scores 1/3 at least 0.4, and on a log loss or an RMSE at most 0.9 of the dummy's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from gitml.gate.result import RuleResult, fmt
from gitml.gate.stats import LOWER_IS_BETTER

if TYPE_CHECKING:
    from gitml.config.schema import GateConfig

# What `metric: auto` means, by rule and task. The champion's regression metric is R^2, not
# RMSE: its tolerance (gate.champion.abs_tolerance) then means the same on any label's scale.
AUTO_METRICS = {"baseline": ("roc_auc", "rmse"), "champion": ("roc_auc", "r2")}


def resolve_metric(name: str, task: str, rule: str) -> str:
    """``name``, or for ``auto`` the ``rule``'s metric (baseline, champion) for ``task``."""
    if name != "auto":
        return name
    classification, regression = AUTO_METRICS[rule]
    return regression if task == "regression" else classification


def metrics_task(metrics: dict[str, Any]) -> str:
    """The task metrics.json records (one written before tasks is classification)."""
    return str(metrics.get("task") or "binary")


def baseline_metric(cfg: GateConfig, task: str = "binary") -> str:
    return resolve_metric(cfg.baseline.metric, task, "baseline")


def skill(score: float, dummy: float, metric: str) -> float | None:
    """(score - dummy) / (perfect - dummy); None when the dummy already is perfect."""
    perfect = 0.0 if metric in LOWER_IS_BETTER else 1.0
    if math.isclose(dummy, perfect):
        return None
    return (score - dummy) / (perfect - dummy)


def baseline_result(cfg: GateConfig, metrics: dict[str, Any]) -> RuleResult:
    rule, metric = cfg.baseline, baseline_metric(cfg, metrics_task(metrics))
    name = f"baseline: test.{metric} skill over the dummy >= {rule.min_skill:g}"
    bound = f">= {rule.min_skill:g}"

    def result(verdict: str, reason: str, value: float | None = None) -> RuleResult:
        return RuleResult(name, "baseline", value, bound, verdict, f"{reason} (gate.baseline).")

    dummy_scores = (metrics.get("baseline") or {}).get("test")
    if not isinstance(dummy_scores, dict):
        return result("fail", "metrics.json holds no baseline scores; rerun evaluate (`dvc repro evaluate`)")
    score, dummy = (metrics.get("test") or {}).get(metric), dummy_scores.get(metric)
    if not isinstance(score, (int, float)) or not isinstance(dummy, (int, float)):
        why = " (undefined when the test split holds one class only)" if metric in ("roc_auc", "pr_auc") else ""
        return result("fail", f"test.{metric} is missing from the metrics{why}")
    gained = skill(float(score), float(dummy), metric)
    if gained is None:
        return result("skip", f"the dummy already scores a perfect {metric} {fmt(dummy)}: nothing to beat")
    if math.isnan(gained):
        return result("fail", f"test.{metric} is NaN")
    verb = "meets" if gained >= rule.min_skill else "is below"
    dummy_kind = "mean label" if metrics_task(metrics) == "regression" else "class prior"
    reason = (f"test.{metric} {fmt(score)} vs the dummy's {fmt(dummy)} ({dummy_kind}): skill {fmt(gained)}, "
              f"which {verb} the minimum {rule.min_skill:g}")
    return result("pass" if gained >= rule.min_skill else "fail", reason, gained)
