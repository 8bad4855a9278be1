"""Plot data in the shapes DVC's built-in templates read (confusion, simple, linear, scatter)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.utils.atomic import atomic_path

if TYPE_CHECKING:
    import numpy as np

CONFUSION, ROC, PR, CALIBRATION = "confusion.csv", "roc.csv", "precision_recall.csv", "calibration.csv"
PREDICTED, RESIDUALS = "predicted_actual.csv", "residuals.csv"  # regression
# Every file dvc.yaml's plot definitions name, with its columns. The other task's files are
# written with the header alone: `dvc plots show` draws them empty instead of warning that
# some plots "failed to load".
COLUMNS = {CONFUSION: ("actual", "predicted"), ROC: ("fpr", "tpr", "threshold"), PR: ("recall", "precision"),
           CALIBRATION: ("mean_predicted", "fraction_positive", "count"), PREDICTED: ("actual", "predicted"),
           RESIDUALS: ("predicted", "residual")}


def write_headers(folder: Path, names: tuple[str, ...]) -> None:
    """Header-only plot files for the plots the task does not have."""
    import pandas as pd

    for name in names:
        _csv(folder / name, pd.DataFrame(columns=list(COLUMNS[name])))


def write_regression_plots(folder: Path, y: np.ndarray, predicted: np.ndarray, max_points: int = 1000) -> None:
    """Predicted against actual, and residual against predicted, one row per test row (thinned
    evenly to ``max_points``, in the label's order so the thinning keeps its whole range)."""
    import numpy as np
    import pandas as pd

    order = np.argsort(y, kind="stable")
    frame = pd.DataFrame({"actual": y[order], "predicted": predicted[order]})
    frame = _thin(frame, max_points)
    _csv(folder / PREDICTED, frame)
    _csv(folder / RESIDUALS, pd.DataFrame({"predicted": frame["predicted"],
                                           "residual": frame["predicted"] - frame["actual"]}))
    write_headers(folder, (CONFUSION, ROC, PR, CALIBRATION))


def write_plots(folder: Path, y: np.ndarray, proba: np.ndarray, classes: list[Any], bins: int = 10) -> None:
    """Write every plot file to ``folder`` (atomically, one file at a time)."""
    import numpy as np
    import pandas as pd
    from sklearn import metrics as skm

    names = np.array([str(c) for c in classes])
    pred = proba.argmax(axis=1)
    _csv(folder / CONFUSION, pd.DataFrame({"actual": names[y], "predicted": names[pred]}))

    # Binary: the positive class; multi-class: micro-average over one-vs-rest.
    if len(classes) == 2:
        truth, score = (y == 1).astype(int), proba[:, 1]
    else:
        truth, score = np.eye(len(classes))[y].ravel().astype(int), proba.ravel()
    if truth.min() != truth.max():
        fpr, tpr, thr = skm.roc_curve(truth, score, drop_intermediate=True)
        _csv(folder / ROC, pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.clip(thr, 0, 1)}))
        precision, recall, _ = skm.precision_recall_curve(truth, score)
        _csv(folder / PR, _thin(pd.DataFrame({"recall": recall, "precision": precision})))
    else:
        write_headers(folder, (ROC, PR))
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(score, edges[1:-1]), 0, bins - 1)
    rows = [
        {"mean_predicted": float(score[which == b].mean()), "fraction_positive": float(truth[which == b].mean()),
         "count": int((which == b).sum())}
        for b in range(bins) if (which == b).any()
    ]
    _csv(folder / CALIBRATION, pd.DataFrame(rows, columns=["mean_predicted", "fraction_positive", "count"]))
    write_headers(folder, (PREDICTED, RESIDUALS))


def _thin(frame: Any, max_points: int = 500) -> Any:
    if len(frame) <= max_points:
        return frame
    step = -(-len(frame) // max_points)
    return frame.iloc[::step]


def _csv(path: Path, frame: Any) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
