"""``data.sensitive`` and the gate thresholds on ``fairness.<column>.<metric>`` (see :mod:`gitml.config.rules`).

Whether a column exists and is categorical is known only once the data is: evaluate checks
that (evaluate/fairness.py) and names the same keys.
"""

from __future__ import annotations

import math

from gitml.config.checks import Problems
from gitml.config.schema import DataConfig

UNIT = (0.0, 1.0)
# What evaluate/fairness.py writes per sensitive column, with the values each can take.
# Classification metrics are differences and ratios between groups; regression ones the
# largest minus the smallest group error. tests/unit/test_fairness.py checks them against
# what it really writes.
CLASSIFICATION_RANGES: dict[str, tuple[float, float]] = {
    "demographic_parity_difference": UNIT, "demographic_parity_ratio": UNIT,
    "equalized_odds_difference": UNIT, "equalized_odds_ratio": UNIT,
}
REGRESSION_RANGES: dict[str, tuple[float, float]] = {"mae_gap": (0.0, math.inf), "rmse_gap": (0.0, math.inf)}
FAIRNESS_RANGES = {**CLASSIFICATION_RANGES, **REGRESSION_RANGES}


def sensitive_problems(data: DataConfig) -> Problems:
    """``data.sensitive``: named, distinct, not the label."""
    problems: Problems = []
    seen: set[str] = set()
    for i, column in enumerate(data.sensitive):
        key = f"data.sensitive.{i}"
        if not column:
            problems.append((key, "must name a column of the data."))
        elif column == data.target:
            problems.append((key, f"'{column}' is the label (data.target); a sensitive column names groups of rows."))
        elif column in seen:
            problems.append((key, f"'{column}' is listed twice; keep one entry."))
        seen.add(column)
    return problems


def fairness_range(metric: str, sensitive: list[str]) -> tuple[tuple[float, float] | None, str | None]:
    """For a threshold's ``fairness.<column>.<name>`` (or ``fairness.<column>.per_class.<label>.<name>``):
    (the values it can take, None) or (None, why it names nothing evaluate writes)."""
    parts = metric.split(".")
    column = parts[1] if len(parts) > 1 else ""
    if column not in sensitive:
        listed = ", ".join(dict.fromkeys(sensitive)) or "none (data.sensitive is empty)"
        return None, f"'{column}' is not a data.sensitive column. Sensitive columns: {listed} <data.sensitive>."
    name = parts[2] if len(parts) == 3 else parts[4] if len(parts) == 5 and parts[2] == "per_class" and parts[3] else ""
    if name not in FAIRNESS_RANGES:
        return None, (f"unknown fairness metric {metric!r}. Allowed: fairness.{column}.<name> or "
                      f"fairness.{column}.per_class.<label>.<name> (multiclass), <name> one of "
                      f"{', '.join(FAIRNESS_RANGES)}.")
    return FAIRNESS_RANGES[name], None
