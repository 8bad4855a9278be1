"""What a fairness threshold's reason adds: the two groups furthest apart, or why a value is undefined.

A threshold on ``fairness.<column>.<name>`` (evaluate/fairness.py writes it) is checked like
any other; :func:`fairness_result` makes its result kind ``fairness`` and names the groups,
so a failing gate says who is treated differently, not only by how much.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gitml.evaluate.fairness_table import extremes
from gitml.gate.result import RuleResult


def fairness_result(result: RuleResult, split_metrics: Any, metric: str, key: str) -> RuleResult:
    """``result`` (threshold ``key`` on ``metric``, ``fairness.<column>...``) as a fairness rule naming its groups."""
    parts = metric.split(".")
    column, name = (parts[1] if len(parts) > 1 else ""), parts[-1]
    section = _section(split_metrics, parts)
    reason = result.reason
    if section is not None and name in section and section[name] is None:
        reason = (f"{metric} is undefined on this split: {_undefined(section, name, column)}, so it cannot "
                  f"meet {result.bound} ({key}).")
    elif section is not None:
        detail = extremes(section, name, column)
        reason = f"{reason} {detail}" if detail else reason
    return dataclasses.replace(result, kind="fairness", reason=reason)


def _section(split_metrics: Any, parts: list[str]) -> dict[str, Any] | None:
    """The column's section (or its class's, for ``per_class.<label>.<name>``) under the split."""
    node = split_metrics
    for part in parts[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            return None
        node = node[part]
    return node


def _undefined(section: dict[str, Any], name: str, column: str) -> str:
    groups: dict[str, Any] = section["groups"] if isinstance(section.get("groups"), dict) else {}
    if len(groups) < 2:
        held = ", ".join(map(str, groups)) or "none"
        return f"it holds {len(groups)} group of {column} ({held}), nothing to compare"
    if name.startswith("equalized_odds"):
        return f"fewer than two groups of {column} hold both labels (a true-positive rate needs positives)"
    return "every group's rate is zero, so the ratio has no denominator"
