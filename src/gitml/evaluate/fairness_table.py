"""Read the fairness sections evaluate writes (evaluate/fairness.py): the groups furthest apart, and
the pull request's "Fairness" table.

Plain dict reading without fairlearn, shared by the gate's reasons and ``gitml report``.
"""

from __future__ import annotations

import math
from typing import Any

# The per-group statistic each metric compares (equalized odds: the true- or false-positive
# rate, whichever is further apart).
STATISTICS = {"demographic_parity": ("selection_rate",), "equalized_odds": ("tpr", "fpr"),
              "mae_gap": ("mae",), "rmse_gap": ("rmse",)}
NAMES = {"selection_rate": "selection rate", "tpr": "true-positive rate", "fpr": "false-positive rate",
         "mae": "MAE", "rmse": "RMSE", "accuracy": "accuracy", "n": "n"}
SUMMARY = {"classification": ("demographic_parity_difference", "demographic_parity_ratio",
                              "equalized_odds_difference", "equalized_odds_ratio"),
           "regression": ("mae_gap", "rmse_gap")}


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def worst_class(per_class: dict[str, Any], name: str) -> str | None:
    """The class whose ``name`` is worst (largest difference or gap, smallest ratio)."""
    values = {c: v[name] for c, v in per_class.items()
              if isinstance(v, dict) and isinstance(v.get(name), (int, float))}
    if not values:
        return None
    pick = max if name.endswith(("difference", "gap")) else min
    return pick(values, key=lambda c: values[c])


def extremes(section: dict[str, Any], name: str, column: str) -> str | None:
    """'Furthest apart: selection rate 0.81 in sex=A vs 0.19 in sex=B.' for metric ``name`` of one column.

    A multiclass section's top-level value is its worst class's: that class's groups are named.
    """
    per_class = section.get("per_class")
    if isinstance(per_class, dict) and per_class:
        worst = worst_class(per_class, name)
        text = extremes(per_class[worst], name, column) if worst is not None else None
        return text.replace("Furthest apart:", f"Furthest apart (class {worst}):") if text else None
    stats = next((s for prefix, s in STATISTICS.items() if name.startswith(prefix)), ())
    groups: dict[str, Any] = section["groups"] if isinstance(section.get("groups"), dict) else {}
    best: tuple[float, str, str, str] | None = None
    for stat in stats:
        rates = {g: v[stat] for g, v in groups.items() if isinstance(v, dict) and isinstance(v.get(stat), (int, float))}
        if len(rates) < 2:
            continue
        ordered = sorted(rates, key=lambda g: rates[g])  # stable: equal rates keep the groups' order
        low, high = ordered[0], ordered[-1]
        if best is None or rates[high] - rates[low] > best[0]:
            best = (rates[high] - rates[low], stat, high, low)
    if best is None:
        return None
    _, stat, high, low = best
    return (f"Furthest apart: {NAMES[stat]} {groups[high][stat]:.4g} in {column}={high} vs "
            f"{groups[low][stat]:.4g} in {column}={low}.")


def to_markdown(split_metrics: Any, split: str = "test") -> str | None:
    """The "Fairness" section of the pull-request report, or None when evaluate wrote none."""
    sections = split_metrics.get("fairness") if isinstance(split_metrics, dict) else None
    if not isinstance(sections, dict) or not sections:
        return None
    regression = any("mae_gap" in s for s in sections.values() if isinstance(s, dict))
    names = SUMMARY["regression" if regression else "classification"]
    lines = [f"### Fairness ({split})", "",
             "Between the groups of each `data.sensitive` column (fairlearn); a gate threshold on "
             "`fairness.<column>.<metric>` bounds any of them (docs/gate.md).", "",
             "| Column | " + " | ".join(n.replace("_", " ") for n in names) + " | Furthest apart |",
             "| --- |" + " ---: |" * len(names) + " --- |"]
    for column, section in sections.items():
        if not isinstance(section, dict):
            continue
        apart = extremes(section, names[0] if regression else "demographic_parity_difference", column) or "—"
        lines.append(f"| {column} | " + " | ".join(_num(section.get(n)) for n in names)
                     + f" | {apart.removeprefix('Furthest apart').lstrip(': ').rstrip('.')} |")
    for column, section in sections.items():
        groups = section.get("groups") if isinstance(section, dict) else None
        if not isinstance(groups, dict) or not groups:
            continue
        stats = [s for s in ("n", "selection_rate", "tpr", "fpr", "accuracy", "mae", "rmse")
                 if any(isinstance(g, dict) and s in g for g in groups.values())]
        lines += ["", f"Groups of `{column}`:", "", "| Group | " + " | ".join(NAMES[s] for s in stats) + " |",
                  "| --- |" + " ---: |" * len(stats)]
        lines += [f"| {group} | " + " | ".join(_num(values.get(s)) for s in stats) + " |"
                  for group, values in groups.items() if isinstance(values, dict)]
    return "\n".join(lines) + "\n"
