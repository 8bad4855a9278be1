"""The learning task of a label column: ``binary``, ``multiclass`` or ``regression``.

One rule, used by contract inference (``gitml schema infer``, the validate stage) and by
``gitml init``: a label of text or booleans names classes; a numeric label is a quantity
(regression) when it holds fractions or more than :data:`MAX_CLASSES` distinct values,
and classes otherwise. ``data.task`` overrides the rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitml.errors import ConfigError, GitmlError

if TYPE_CHECKING:
    import pandas as pd

TASKS = ("binary", "multiclass", "regression")
MAX_CLASSES = 20  # a numeric label with more distinct values is a quantity, not a class
TASK_KEY = "data.task"


def infer_task(values: pd.Series) -> tuple[str, str]:
    """The task a label's values suggest, and why (one clause for a log line).

    Example:
        >>> import pandas as pd
        >>> infer_task(pd.Series([0.5, 1.25, 3.0]))
        ('regression', 'numeric with fractions')
    """
    from pandas.api import types

    present = values.dropna()
    distinct = present.unique()
    numeric = types.is_numeric_dtype(present) and not types.is_bool_dtype(present)
    if numeric and len(distinct) and bool(((present % 1) != 0).any()):
        return "regression", "numeric with fractions"
    if numeric and len(distinct) > MAX_CLASSES:
        return "regression", f"numeric with {len(distinct)} distinct values (more than {MAX_CLASSES})"
    kind = "numeric" if numeric else "text" if not types.is_bool_dtype(present) else "boolean"
    return ("binary" if len(distinct) == 2 else "multiclass"), f"{kind} with {len(distinct)} distinct values"


def task_of_classes(classes: list[Any]) -> str:
    """The classification task for a list of classes (contracts that predate ``task``)."""
    return "binary" if len(classes) == 2 else "multiclass"


def check_task(task: str, classes: list[Any], label: str, source: str, key: str = TASK_KEY) -> None:
    """Raise ConfigError (naming ``key`` in ``source``) when ``task`` cannot fit the label's classes."""
    if task not in TASKS:
        raise ConfigError(source, key, f"unknown task {task!r}. Allowed: {', '.join(TASKS)}.")
    if task == "regression":
        return
    if len(classes) < 2 or (task == "binary" and len(classes) != 2) or (task == "multiclass" and len(classes) < 3):
        shown = ", ".join(map(str, classes[:10])) + (", ..." if len(classes) > 10 else "")
        raise ConfigError(
            source, key,
            f"task {task} needs {'exactly 2' if task == 'binary' else 'at least 3'} classes; label "
            f"'{label}' has {len(classes)}{': ' + shown if classes else ''}.",
            hint="set data.task to the task the label fits (binary, multiclass or regression), or null to infer it.")


def regression_labels(values: pd.Series, label: str) -> Any:
    """The label as float64 for a regression task; a GitmlError names the values that are not numbers."""
    import numpy as np
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    bad = values[np.isnan(numbers) | ~np.isfinite(numbers)]
    if len(bad):
        shown = ", ".join(repr(v) for v in bad.head(3).tolist())
        raise GitmlError(f"Task regression needs a finite number in every row of label '{label}'; "
                         f"{len(bad)} row(s) are not (e.g. {shown}). Clean the label column, or set "
                         "data.task to a classification task.")
    return numbers
