"""``gitml evaluate``: score the trained model on the held-out test split."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gitml.config.schema import DataConfig
from gitml.data.preprocess import Preprocessor
from gitml.evaluate.metrics import mean_baseline, prior_baseline, slice_metrics, task_metrics
from gitml.evaluate.plots import write_plots, write_regression_plots
from gitml.models import load_model
from gitml.utils.atomic import write_json

log = logging.getLogger(__name__)


def evaluate(
    data: DataConfig, data_dir: str | Path, model_dir: str | Path,
    metrics_out: str | Path, plots_dir: str | Path, split: str = "test", trusted_types: Iterable[str] = (),
) -> dict[str, Any]:
    """Write ``metrics_out`` (nested by split, plus slices) and the plot files.

    ``trusted_types``: the config's ``model.trusted_types`` (exact skops type names).
    """
    import pandas as pd

    model_dir = Path(model_dir)
    model = load_model(model_dir, trusted_types)
    prep = Preprocessor.load(model_dir / "preprocessor.json")
    records = pd.read_parquet(Path(data_dir) / f"{split}.parquet")
    X = prep.transform(records)
    y = prep.encode_labels(records[data.target])
    regression = prep.regression
    output = model.predict(X) if regression else model.predict_proba(X)  # numbers, or class probabilities
    train_labels = pd.read_parquet(Path(data_dir) / "train.parquet", columns=[data.target])[data.target]
    y_train = prep.encode_labels(train_labels)
    dummy = mean_baseline(y_train, len(y)) if regression else prior_baseline(y_train, len(prep.classes), len(y))
    scores = task_metrics(y, output, prep.classes, regression)
    if data.sensitive:  # absent otherwise: metrics.json stays as it was (and fairlearn unimported)
        from gitml.evaluate.fairness import fairness_metrics

        scores["fairness"] = fairness_metrics(records, y, output, prep.classes, data, regression)
    metrics: dict[str, Any] = {
        "task": prep.task,
        split: scores,
        "slices": slice_metrics(records, y, output, prep.classes, list(data.slices), regression),
        # what a model that learned nothing scores on the same rows: the gate's baseline rule
        "baseline": {"strategy": "mean" if regression else "prior",
                     split: _overall(task_metrics(y, dummy, prep.classes, regression))},
    }
    write_json(metrics_out, metrics)
    if regression:
        write_regression_plots(Path(plots_dir), y, output)
    else:
        write_plots(Path(plots_dir), y, output, prep.classes)
    shown = {k: round(v, 4) for k, v in scores.items()
             if k in ("accuracy", "roc_auc", "f1_macro", "rmse", "mae", "r2")}
    log.info("evaluated on %d %s rows: %s", len(y), split, shown)
    return metrics


def _overall(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "per_class"}
