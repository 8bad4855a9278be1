"""Metrics on a held-out split, overall, per class and on declared slices: classification
(from class probabilities) or regression (from predicted numbers, NumPy only)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from gitml.config.schema import SliceConfig

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def classification_metrics(y: np.ndarray, proba: np.ndarray, classes: list[Any]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, P/R/F1 (macro and per class), ROC AUC, PR AUC, log loss, Brier."""
    import numpy as np
    from sklearn import metrics as skm

    labels = np.arange(len(classes))
    pred = proba.argmax(axis=1)
    out: dict[str, Any] = {
        "n": len(y),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)),
    }
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    out["precision_macro"] = float(precision.mean())
    out["recall_macro"] = float(recall.mean())
    out["f1_macro"] = float(f1.mean())
    present = np.unique(y)
    onehot = np.eye(len(classes))[y]
    if len(present) > 1:
        if len(classes) == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y, proba[:, 1]))
            out["pr_auc"] = float(skm.average_precision_score(y, proba[:, 1]))
        else:
            cols = present  # one-vs-rest over the classes present in y
            out["roc_auc"] = float(skm.roc_auc_score(onehot[:, cols], proba[:, cols], average="macro"))
            out["pr_auc"] = float(skm.average_precision_score(onehot[:, cols], proba[:, cols], average="macro"))
    clipped = np.clip(proba, 1e-15, 1.0)
    out["log_loss"] = float(skm.log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=labels))
    out["brier"] = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    out["per_class"] = {
        str(c): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    }
    return out


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """RMSE, MAE, R^2, median and max absolute error, and bias (mean of predicted - actual).

    R^2 is 1 - SSE / SST on these rows (scikit-learn's ``r2_score``); with a constant label it
    is 1.0 for a perfect fit and 0.0 otherwise.

    Example:
        >>> regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))["mae"]
        0.3333333333333333
    """
    import numpy as np

    y, predicted = np.asarray(y, dtype="float64"), np.asarray(predicted, dtype="float64")
    error = predicted - y
    sse, sst = float(np.sum(error**2)), float(np.sum((y - y.mean()) ** 2)) if len(y) else 0.0
    return {
        "n": len(y),
        "rmse": float(np.sqrt(np.mean(error**2))) if len(y) else float("nan"),
        "mae": float(np.mean(np.abs(error))) if len(y) else float("nan"),
        "r2": 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0),
        "median_ae": float(np.median(np.abs(error))) if len(y) else float("nan"),
        "max_error": float(np.max(np.abs(error))) if len(y) else float("nan"),
        "bias": float(np.mean(error)) if len(y) else float("nan"),
    }


def mean_baseline(y_train: np.ndarray, n_rows: int) -> np.ndarray:
    """The regression dummy the gate's baseline rule compares with: the training split's mean
    label for every row (scikit-learn's ``DummyRegressor(strategy="mean")``)."""
    import numpy as np

    return np.full(n_rows, float(np.mean(y_train)) if len(y_train) else 0.0)


def task_metrics(y: np.ndarray, output: np.ndarray, classes: list[Any], regression: bool) -> dict[str, Any]:
    """:func:`regression_metrics` of predicted numbers, or :func:`classification_metrics` of probabilities."""
    return regression_metrics(y, output) if regression else classification_metrics(y, output, classes)


def prior_baseline(y_train: np.ndarray, n_classes: int, n_rows: int) -> np.ndarray:
    """The dummy model the gate's baseline rule compares with: the training split's class
    shares as every row's probabilities (scikit-learn's ``DummyClassifier(strategy="prior")``).

    Its ROC AUC is 0.5, its accuracy the test share of the most frequent training class.
    """
    import numpy as np

    prior = np.bincount(y_train, minlength=n_classes).astype("float64")
    prior /= max(prior.sum(), 1.0)
    return np.broadcast_to(prior, (n_rows, n_classes)).copy()


def slice_groups(records: pd.DataFrame, spec: SliceConfig) -> pd.Series:
    """Group label per row: numeric columns cut at ``bins``, other columns by value."""
    import pandas as pd

    column = records[spec.column]
    if spec.bins:
        edges = list(spec.bins)
        labels = [f"[{lo:g}, {hi:g})" for lo, hi in itertools.pairwise(edges)]
        return pd.cut(column, bins=edges, right=False, labels=labels).astype(str)
    return column.astype(str)


def slice_metrics(
    records: pd.DataFrame, y: np.ndarray, proba: np.ndarray, classes: list[Any],
    slices: list[SliceConfig], regression: bool = False,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Metrics per group of each declared slice, so a model bad for one group shows.

    ``proba``: class probabilities, or the predicted numbers when ``regression``.
    """
    from gitml.errors import ConfigError

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for i, spec in enumerate(slices):
        if spec.column not in records.columns:
            raise ConfigError(
                "params.yaml", f"data.slices.{i}.column",
                f"column '{spec.column}' is not in the data. Columns: {', '.join(records.columns)}.",
            )
        groups = slice_groups(records, spec)
        out[spec.column] = {}
        for group in sorted(groups.unique()):
            mask = (groups == group).to_numpy()
            if mask.sum() == 0:
                continue
            metrics = task_metrics(y[mask], proba[mask], classes, regression)
            metrics.pop("per_class", None)
            out[spec.column][group] = metrics
    return out
