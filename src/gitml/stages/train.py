"""``gitml train``: fit the configured model family on the prepared features."""

from __future__ import annotations

import dataclasses
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


def load_features(data_dir: Path, split: str, target: str) -> tuple[Any, Any]:
    import pandas as pd

    frame = pd.read_parquet(data_dir / "features" / f"{split}.parquet")
    return frame.drop(columns=[target]).to_numpy(dtype="float32"), frame[target].to_numpy(dtype="int64")


def train(
    cfg: Config, data_dir: str | Path, out_dir: str | Path, checkpoint_dir: str | Path | None,
    curves_out: str | Path, summary_out: str | Path | None = None,
) -> dict[str, Any]:
    """Train, then write the model folder (weights + model.json + preprocessor.json) atomically."""
    from gitml.train.loop import fingerprint

    data_dir = Path(data_dir)
    prep = Preprocessor.load(data_dir / PREPROCESSOR)
    X, y = load_features(data_dir, "train", cfg.data.target)
    X_val, y_val = load_features(data_dir, "val", cfg.data.target)
    run_id = fingerprint(_plain(cfg.model), _plain(cfg.trainer), X, y, X_val, y_val)
    model = build_model(
        cfg.model, cfg.trainer, classes=prep.classes, feature_names=prep.feature_names(),
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None, run_fingerprint=run_id,
    )
    started = time.perf_counter()
    model.fit(X, y, X_val, y_val)
    seconds = time.perf_counter() - started
    with atomic_path(out_dir) as tmp:
        model.save(tmp)
        shutil.copy2(data_dir / PREPROCESSOR, tmp / PREPROCESSOR)

    history = _history(model, X, y, X_val, y_val)
    _write_curves(Path(curves_out), history)
    result = getattr(model, "result_", None)
    summary = {
        "train": {
            "family": model.family,
            "epochs": len(history),
            "best_epoch": getattr(result, "best_epoch", len(history)),
            "stopped_early": bool(getattr(result, "stopped_early", False)),
            "resumed_from_epoch": getattr(result, "resumed_from", 0),
            "device": getattr(result, "device", "cpu"),
            "rows": len(X),
        }
    }
    if summary_out:
        write_json(summary_out, summary)
    log.info("trained %s on %d rows in %.1fs -> %s", model.family, len(X), seconds, out_dir)
    return summary


def _history(model: Any, X: Any, y: Any, X_val: Any, y_val: Any) -> list[dict[str, float]]:
    result = getattr(model, "result_", None)
    if result is not None and result.history:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in result.history]
    # Families without epochs get one point: the fitted model on both splits.
    import numpy as np
    from sklearn.metrics import log_loss

    labels = list(range(len(model.classes_)))
    train_p, val_p = model.predict_proba(X), model.predict_proba(X_val)
    return [{
        "epoch": 1,
        "train_loss": float(log_loss(y, np.clip(train_p, 1e-15, 1), labels=labels)),
        "val_loss": float(log_loss(y_val, np.clip(val_p, 1e-15, 1), labels=labels)),
        "val_accuracy": float((val_p.argmax(1) == y_val).mean()),
    }]


def _write_curves(path: Path, history: list[dict[str, float]]) -> None:
    import pandas as pd

    columns = ["epoch", "train_loss", "val_loss", "val_accuracy"]
    frame = pd.DataFrame(history).reindex(columns=columns)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def _plain(node: Any) -> Any:
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return dataclasses.asdict(node)
    return node
