"""Fairness between the groups of each ``data.sensitive`` column, computed with fairlearn.

evaluate writes it under the split, ``test.fairness.<column>``, so ``dvc metrics diff`` and
a gate threshold (``{metric: fairness.<column>.demographic_parity_difference, max: 0.1}``)
read it like any other metric:

- classification: ``demographic_parity_difference`` / ``_ratio`` (selection rates: the share
  of rows predicted as the class) and ``equalized_odds_difference`` / ``_ratio`` (the worse of
  the true- and false-positive rate gaps), with ``groups.<group>.{n, selection_rate, tpr, fpr}``.
  A binary model is judged on its positive class (the second class); a multiclass model on
  each class one-vs-rest under ``per_class.<class>``, the worst class's values at the top and
  ``groups.<group>.{n, accuracy}``. Predictions are the most probable class, as accuracy's.
- regression: ``groups.<group>.{n, mae, rmse}`` and ``mae_gap`` / ``rmse_gap`` (largest minus
  smallest group error).

A value no group comparison defines is null: one group only, or for equalized odds fewer than
two groups holding both labels (a true-positive rate needs positives). fairlearn is imported
only when ``data.sensitive`` names a column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitml.config.schema import DataConfig, SliceConfig

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from gitml.data.contract import Contract

MISSING = "(missing)"  # the group of rows without a value


def _refusal(column: str, why: str, data: DataConfig, detail: str = "") -> str:
    """Why ``column`` cannot be a ``data.sensitive`` column: ``why`` is absent, dates, numeric or levels."""
    return {
        "absent": f"column '{column}' is not in the data contract's columns: {detail}.",
        "dates": f"column '{column}' holds dates, which name no groups; derive a category column from them.",
        "numeric": f"column '{column}' is numeric: give it bins in data.slices (- {{column: {column}, bins: "
                   "[edges]}) so its groups are ranges.",
        "levels": f"column '{column}' has {detail} distinct values, more than data.schema.max_categories "
                  f"({data.schema.max_categories}): not a group column.",
    }[why]


def contract_problems(data: DataConfig, contract: Contract) -> list[tuple[str, str]]:
    """``(key, problem)`` for each ``data.sensitive`` column the contract already rules out (validate
    runs this, so a wrong column fails before training, not at evaluate): not a column, dates,
    numeric without ``data.slices`` bins, a category with too many levels."""
    binned = {spec.column for spec in data.slices if spec.bins}
    known = [*contract.columns, *contract.excluded]
    problems = []
    for index, column in enumerate(data.sensitive):
        spec, excluded = contract.columns.get(column), contract.excluded.get(column)
        dtype = spec.dtype if spec is not None else excluded.dtype if excluded is not None else None
        why, detail = (("absent", ", ".join(known)) if dtype is None else ("dates", "") if dtype == "datetime"
                       else ("numeric", "") if dtype in ("int", "float") and column not in binned else (None, ""))
        if why is None and spec is not None and len(spec.categories or ()) > data.schema.max_categories:
            why, detail = "levels", str(len(spec.categories or ()))
        if why is not None:
            problems.append((f"data.sensitive.{index}", _refusal(column, why, data, detail)))
    return problems


def sensitive_groups(records: pd.DataFrame, data: DataConfig, index: int) -> pd.Series:
    """The group of each row for ``data.sensitive[index]``: its value, or its ``data.slices`` bin.

    A ConfigError naming ``data.sensitive.<index>`` when the column is not in the data, is a
    date, is numeric without bins, or has more groups than ``data.schema.max_categories``.
    """
    from pandas.api import types

    from gitml.errors import ConfigError
    from gitml.evaluate.metrics import slice_groups

    column, key = data.sensitive[index], f"data.sensitive.{index}"
    if column not in records.columns:
        raise ConfigError("params.yaml", key, _refusal(column, "absent", data, ", ".join(map(str, records.columns))))
    values = records[column]
    binned = next((spec for spec in data.slices if spec.column == column and spec.bins), None)
    if binned is not None:
        return slice_groups(records, SliceConfig(column, binned.bins)).where(values.notna(), MISSING)
    if types.is_datetime64_any_dtype(values):
        raise ConfigError("params.yaml", key, _refusal(column, "dates", data))
    if types.is_numeric_dtype(values) and not types.is_bool_dtype(values):
        raise ConfigError("params.yaml", key, _refusal(column, "numeric", data))
    groups = values.astype(str).where(values.notna(), MISSING)
    if groups.nunique() > data.schema.max_categories:
        raise ConfigError("params.yaml", key, _refusal(column, "levels", data, str(groups.nunique())))
    return groups


def fairness_metrics(
    records: pd.DataFrame, y: np.ndarray, output: np.ndarray, classes: list[Any], data: DataConfig,
    regression: bool,
) -> dict[str, dict[str, Any]]:
    """``{column: section}`` for every ``data.sensitive`` column (see the module's docstring).

    ``output``: class probabilities, or the predicted numbers when ``regression``.

    Example:
        >>> fairness_metrics(records, y, proba, ["no", "yes"], cfg.data, False)["sex"]  # doctest: +SKIP
        {'demographic_parity_difference': 0.04, ..., 'groups': {'f': {'n': 61, 'selection_rate': 0.41, ...}}}
    """
    import numpy as np

    out: dict[str, dict[str, Any]] = {}
    for index, column in enumerate(data.sensitive):
        groups = sensitive_groups(records, data, index).to_numpy()
        if regression:
            out[column] = _regression(np.asarray(y, dtype="float64"), np.asarray(output, dtype="float64"), groups)
        elif len(classes) == 2:
            out[column] = _one_class(np.asarray(y) == 1, output.argmax(axis=1) == 1, groups)
        else:
            out[column] = _multiclass(np.asarray(y), output.argmax(axis=1), classes, groups)
    return out


def _number(value: Any) -> float | None:
    """A finite float, or None (JSON null) for what fairlearn leaves undefined (NaN, inf)."""
    import math

    value = float(value)
    return value if math.isfinite(value) else None


def _one_class(actual: np.ndarray, predicted: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Demographic parity and equalized odds of one class (``actual``/``predicted``: is it this class)."""
    import numpy as np
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    frame = MetricFrame(metrics={"n": count, "selection_rate": selection_rate, "tpr": true_positive_rate,
                                 "fpr": false_positive_rate},
                        y_true=actual, y_pred=predicted, sensitive_features=groups)
    table: dict[str, dict[str, Any]] = {}
    for group, row in frame.by_group.iterrows():
        inside = groups == group
        has_pos, has_neg = bool(actual[inside].any()), bool((~actual[inside]).any())
        # fairlearn reports 0 for a rate without rows to count; it is undefined
        table[str(group)] = {"n": int(row["n"]), "selection_rate": float(row["selection_rate"]),
                             "tpr": float(row["tpr"]) if has_pos else None,
                             "fpr": float(row["fpr"]) if has_neg else None}
    section: dict[str, Any] = dict.fromkeys(
        ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
         "equalized_odds_ratio"))
    if len(table) >= 2:
        section["demographic_parity_difference"] = _number(
            demographic_parity_difference(actual, predicted, sensitive_features=groups))
        section["demographic_parity_ratio"] = _number(demographic_parity_ratio(actual, predicted, sensitive_features=groups))
    both = [g for g, row in table.items() if row["tpr"] is not None and row["fpr"] is not None]
    if len(both) >= 2:  # equalized odds over the groups that hold both labels
        kept = np.isin(groups.astype(str), both)
        section["equalized_odds_difference"] = _number(
            equalized_odds_difference(actual[kept], predicted[kept], sensitive_features=groups[kept]))
        section["equalized_odds_ratio"] = _number(
            equalized_odds_ratio(actual[kept], predicted[kept], sensitive_features=groups[kept]))
    section["groups"] = table
    return section


def _multiclass(y: np.ndarray, predicted: np.ndarray, classes: list[Any], groups: np.ndarray) -> dict[str, Any]:
    """Each class one-vs-rest; the top holds the worst class's value (largest difference, smallest ratio)."""
    import numpy as np

    per_class = {str(c): _one_class(y == code, predicted == code, groups) for code, c in enumerate(classes)}
    section: dict[str, Any] = {}
    for name in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                 "equalized_odds_ratio"):
        values = [v[name] for v in per_class.values() if v[name] is not None]
        worst = max if name.endswith("difference") else min
        section[name] = worst(values) if values else None
    section["groups"] = {str(g): {"n": int((groups == g).sum()), "accuracy": float(np.mean(y[groups == g] == predicted[groups == g]))}
                         for g in sorted(set(groups.tolist()), key=str)}
    section["per_class"] = per_class
    return section


def _regression(y: np.ndarray, predicted: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Per-group MAE and RMSE, and the gap between the worst and the best group."""
    import numpy as np
    from fairlearn.metrics import MetricFrame, count
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    def rmse(actual: np.ndarray, guess: np.ndarray) -> float:
        return float(np.sqrt(mean_squared_error(actual, guess)))

    frame = MetricFrame(metrics={"n": count, "mae": mean_absolute_error, "rmse": rmse},
                        y_true=y, y_pred=predicted, sensitive_features=groups)
    table = {str(group): {"n": int(row["n"]), "mae": float(row["mae"]), "rmse": float(row["rmse"])}
             for group, row in frame.by_group.iterrows()}
    gaps = frame.difference(method="between_groups")
    several = len(table) >= 2
    return {"mae_gap": _number(gaps["mae"]) if several else None,
            "rmse_gap": _number(gaps["rmse"]) if several else None, "groups": table}
