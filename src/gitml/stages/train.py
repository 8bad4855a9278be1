"""``gitml train``: fit the configured model family on the prepared features."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from gitml.config.rules_stream import STREAMING_FAMILIES
from gitml.config.schema import Config
from gitml.data.preprocess import Preprocessor
from gitml.errors import StreamingError
from gitml.models import build_model
from gitml.utils.atomic import atomic_path, write_json

log = logging.getLogger(__name__)
PREPROCESSOR = "preprocessor.json"
TORCH_FAMILIES = STREAMING_FAMILIES  # the families gitml's own trainer fits: in one process or several, streamed or not


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
    """Train, then write the model folder (weights + model.json + preprocessor.json) atomically.

    With more than one rank in ``trainer.distributed`` (a torch family), launch them through
    PyTorch's elastic launcher and return rank 0's summary; a process torchrun started joins
    its group instead. Rank 0 alone writes.
    """
    from gitml.train import distributed

    args = (cfg, data_dir, out_dir, checkpoint_dir, curves_out, summary_out)
    nproc = _ranks_to_launch(cfg)
    if nproc:
        results = distributed.launch(cfg.trainer, nproc, _launched_rank, logging.getLogger().level, *args)
        return results.get(0) or next(iter(results.values()), {})
    return _train_rank(*args)


def _ranks_to_launch(cfg: Config) -> int:
    """Ranks to launch on this machine; 0 to train in this process: alone, as a rank torchrun
    started, or for a scikit-learn family (which fits in one process: the keys are ignored)."""
    from gitml.train import distributed

    dist = cfg.trainer.distributed
    if distributed.launched_by_torchrun() or (dist.nproc_per_node == 1 and dist.nnodes == 1):
        return 0
    if cfg.model.family not in TORCH_FAMILIES:
        log.info("%s fits in one process: trainer.distributed is ignored <trainer.distributed.nproc_per_node=%s "
                 "nnodes=%d>", cfg.model.family, dist.nproc_per_node, dist.nnodes)
        return 0
    import torch

    cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    nproc = distributed.local_ranks(dist, cfg.trainer.device, cuda_devices)
    return nproc if nproc > 1 or dist.nnodes > 1 else 0


def _launched_rank(level: int, *args: Any) -> dict[str, Any]:
    """What each launched rank runs (a module-level function: the launcher spawns it by name)."""
    from gitml.train import distributed

    distributed.rank_logging(level)
    return _train_rank(*args)


def _train_rank(
    cfg: Config, data_dir: str | Path, out_dir: str | Path, checkpoint_dir: str | Path | None,
    curves_out: str | Path, summary_out: str | Path | None = None,
) -> dict[str, Any]:
    """One process's training: alone, or as a rank of the group it joins (writing only as rank 0)."""
    from gitml.train import distributed

    rank = None
    if distributed.launched_by_torchrun() and int(os.environ["WORLD_SIZE"]) > 1:
        if cfg.model.family not in TORCH_FAMILIES:
            if os.environ["RANK"] != "0":
                log.info("%s fits in one process: rank %s leaves it to rank 0", cfg.model.family, os.environ["RANK"])
                return {}
        else:
            rank = distributed.join(cfg.trainer)
            distributed.quiet_unless_writer(rank)
    try:
        return _fit_and_write(cfg, Path(data_dir), out_dir, checkpoint_dir, curves_out, summary_out, rank)
    finally:
        if rank is not None:  # a process that joined no group need not import torch.distributed
            distributed.leave()


def _fit_and_write(
    cfg: Config, data_dir: Path, out_dir: str | Path, checkpoint_dir: str | Path | None,
    curves_out: str | Path, summary_out: str | Path | None, rank: Any,
) -> dict[str, Any]:
    prep = Preprocessor.load(data_dir / PREPROCESSOR)
    model = build_model(cfg.model, cfg.trainer, classes=prep.classes, feature_names=prep.feature_names(),
                        task=prep.task)
    started = time.perf_counter()
    checkpoints = Path(checkpoint_dir) if checkpoint_dir else None
    streamed = streamed_features(cfg, data_dir, prep.regression)
    if streamed is not None:
        model.fit_stream(*streamed, checkpoints=checkpoints)  # type: ignore[attr-defined]
        rows = streamed[0].rows
    else:
        X, y = load_features(data_dir, "train", cfg.data.target, prep.regression)
        X_val, y_val = load_features(data_dir, "val", cfg.data.target, prep.regression)
        model.fit(X, y, X_val, y_val, checkpoints=checkpoints)
        rows = len(X)
    seconds = time.perf_counter() - started
    report = model.report_
    history = [{k: v for k, v in row.items() if k != "seconds"} for row in report.history]
    summary = {
        "train": {
            "family": model.family, "epochs": len(history), "best_epoch": report.best_epoch,
            "stopped_early": report.stopped_early, "resumed_from_epoch": report.resumed_from,
            "device": report.device, "rows": rows, "ranks": rank.world if rank is not None else 1,
            "streamed": streamed is not None,
        }
    }
    if rank is not None and not rank.writes:
        return summary
    with atomic_path(out_dir) as tmp:
        model.save(tmp)
        shutil.copy2(data_dir / PREPROCESSOR, tmp / PREPROCESSOR)
    _write_curves(Path(curves_out), history)
    if summary_out:
        write_json(summary_out, summary)
    log.info("trained %s on %d rows in %.1fs -> %s", model.family, rows, seconds, out_dir)
    return summary


def streamed_features(cfg: Config, data_dir: Path, regression: bool) -> tuple[Any, Any] | None:
    """The train and val feature files when ``trainer.stream`` streams them (the footer decides
    ``auto``), else None; a family that cannot stream data over the budget is an error."""
    from gitml.data.chunks import use_streaming_allocator
    from gitml.train.rows import FeatureFile, streaming_plan

    train = FeatureFile.open(data_dir / "features" / "train.parquet", cfg.data.target, regression)
    if not streaming_plan(cfg.trainer.stream, train):
        return None
    if cfg.model.family not in STREAMING_FAMILIES:
        budget = cfg.trainer.stream.max_memory_mb
        raise StreamingError(
            f"The training features ({train.path}: {train.rows:,} rows x {train.n_features + 1} columns, "
            f"{train.memory_bytes() / 2**20:,.0f} MiB as float32) exceed trainer.stream.max_memory_mb={budget}, "
            f"and model.family {cfg.model.family!r} fits in memory only: a scikit-learn estimator's fit "
            "takes the whole array.")
    use_streaming_allocator()  # freed row groups go back to the system: the peak stays flat in rows
    log.info("streaming %d row groups of %s, %d at a time <trainer.stream.shuffle_row_groups=%d>",
             len(train.group_rows), train.path, cfg.trainer.stream.shuffle_row_groups,
             cfg.trainer.stream.shuffle_row_groups)
    return train, FeatureFile.open(data_dir / "features" / "val.parquet", cfg.data.target, regression)


def _write_curves(path: Path, history: list[dict[str, float]]) -> None:
    import pandas as pd

    frame = pd.DataFrame(history)
    columns = ["epoch", "train_loss", "val_loss", *(["val_accuracy"] if "val_accuracy" in frame else [])]
    frame = frame.reindex(columns=columns)  # regression has no accuracy
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
