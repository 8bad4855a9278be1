"""``gitml train``: fit the configured model family on the prepared features."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from gitml.config.schema import Config
from gitml.data.preprocess import Preprocessor
from gitml.models import build_model
from gitml.utils.atomic import atomic_path, write_json

log = logging.getLogger(__name__)
PREPROCESSOR = "preprocessor.json"


def load_features(data_dir: Path, split: str, target: str, regression: bool = False) -> tuple[Any, Any]:
    """Features (float32) and labels: int64 class codes, or float32 numbers for regression."""
    import pandas as pd

    frame = pd.read_parquet(data_dir / "features" / f"{split}.parquet")
    labels = frame[target].to_numpy(dtype="float32" if regression else "int64")
    return frame.drop(columns=[target]).to_numpy(dtype="float32"), labels


def train(
    cfg: Config, data_dir: str | Path, out_dir: str | Path, checkpoint_dir: str | Path | None,
    curves_out: str | Path, summary_out: str | Path | None = None,
) -> dict[str, Any]:
    """Train, then write the model folder (weights + model.json + preprocessor.json) atomically."""
    data_dir = Path(data_dir)
    prep = Preprocessor.load(data_dir / PREPROCESSOR)
    X, y = load_features(data_dir, "train", cfg.data.target, prep.regression)
    X_val, y_val = load_features(data_dir, "val", cfg.data.target, prep.regression)
    model = build_model(cfg.model, cfg.trainer, classes=prep.classes, feature_names=prep.feature_names(),
                        task=prep.task)
    started = time.perf_counter()
    model.fit(X, y, X_val, y_val, checkpoints=Path(checkpoint_dir) if checkpoint_dir else None)
    seconds = time.perf_counter() - started
    with atomic_path(out_dir) as tmp:
        model.save(tmp)
        shutil.copy2(data_dir / PREPROCESSOR, tmp / PREPROCESSOR)

    report = model.report_
    history = [{k: v for k, v in row.items() if k != "seconds"} for row in report.history]
    _write_curves(Path(curves_out), history)
    summary = {
        "train": {
            "family": model.family, "epochs": len(history), "best_epoch": report.best_epoch,
            "stopped_early": report.stopped_early, "resumed_from_epoch": report.resumed_from,
            "device": report.device, "rows": len(X),
        }
    }
    if summary_out:
        write_json(summary_out, summary)
    log.info("trained %s on %d rows in %.1fs -> %s", model.family, len(X), seconds, out_dir)
    return summary


def _write_curves(path: Path, history: list[dict[str, float]]) -> None:
    import pandas as pd

    frame = pd.DataFrame(history)
    columns = ["epoch", "train_loss", "val_loss", *(["val_accuracy"] if "val_accuracy" in frame else [])]
    frame = frame.reindex(columns=columns)  # regression has no accuracy
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
