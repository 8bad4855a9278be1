"""The training loop for PyTorch models on tabular data.

Tabular data usually fits in memory, so the whole training set is moved to the device once
and each epoch shuffles by one permutation and slices batches out of it: no per-sample
DataLoader, no collation, no worker processes. See ``benchmarks/bench_trainer.py``. Data
over ``trainer.stream.max_memory_mb`` is streamed from its Parquet file a window of row
groups at a time into the same batches (:mod:`gitml.train.batches`).

In a process group (:mod:`gitml.train.distributed`) every rank draws the same permutation
and takes every ``world``-th row of each global batch (DistributedSampler's interleaving,
per batch), with its loss divided by the global batch's size: the gradients DDP averages
are the one-process gradients, so the batch size means the same at any world size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitml.config.schema import TrainerConfig
from gitml.models import FitReport
from gitml.train import distributed
from gitml.train.batches import device_rows
from gitml.train.checkpoint import (
    TrainState,
    mark_complete,
    parse_checkpoint,
    read_checkpoint,
    restore,
    save_checkpoint,
)
from gitml.train.device import autocast_dtype, resolve_device, seed_everything
from gitml.train.rows import ArrayRows, FeatureFile
from gitml.train.steps import Run, batch_spans, evaluate

log = logging.getLogger(__name__)


def fingerprint(*parts: Any) -> str:
    """Stable hash of configs (JSON) and arrays (bytes), for checkpoint compatibility."""
    digest = hashlib.sha256()
    for part in parts:
        if hasattr(part, "tobytes"):
            digest.update(str(part.shape).encode())
            digest.update(part.tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


class Trainer:
    """Fit a ``torch.nn.Module`` per ``trainer.*``: a classifier with cross-entropy, a regressor
    (one output, ``regression=True``) with mean squared error.

    A checkpoint is resumed only by a run with the same inputs: the trainer fingerprints the
    data, its settings (all but ``epochs``, which a resumed run may raise) and ``identity``,
    what the caller says defines the network and its optimizer (the model's config).

    Example:
        >>> trainer = Trainer(TrainerConfig(epochs=5), checkpoint_dir=Path("models/checkpoints"))
        >>> report = trainer.fit(net, X, y, X_val, y_val, optimizer_factory=partial(AdamW, lr=1e-3))
    """

    def __init__(self, cfg: TrainerConfig, checkpoint_dir: Path | None = None, progress: bool | None = None):
        self.cfg = cfg
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir and cfg.checkpoint else None
        self.progress = sys.stderr.isatty() if progress is None else progress

    def fit(
        self, net: Any, X: Any, y: Any, X_val: Any = None, y_val: Any = None,
        optimizer_factory: Callable[..., Any] | None = None,
        scheduler_factory: Callable[..., Any] | None = None, identity: Any = None,
        class_weight: list[float] | None = None, regression: bool = False,
    ) -> FitReport:
        """Train ``net`` on arrays in memory: :meth:`fit_rows` of ``ArrayRows(X, y)``."""
        val = ArrayRows(X_val, y_val) if X_val is not None else None
        return self.fit_rows(net, ArrayRows(X, y), val, optimizer_factory, scheduler_factory, identity,
                             class_weight, regression)

    def fit_rows(
        self, net: Any, train: ArrayRows | FeatureFile, val: ArrayRows | FeatureFile | None = None,
        optimizer_factory: Callable[..., Any] | None = None,
        scheduler_factory: Callable[..., Any] | None = None, identity: Any = None,
        class_weight: list[float] | None = None, regression: bool = False,
    ) -> FitReport:
        """Train ``net`` for ``trainer.epochs`` (resuming a checkpoint, stopping early); keep the best weights.

        ``train``/``val``: rows in memory, or prepared feature files streamed a window of row
        groups at a time (``trainer.stream``; the stage decides which).
        ``class_weight``: one loss weight per class (``model.class_weight``), for the
        training loss and the validation loss early stopping follows; None weighs rows alike.
        ``regression``: the labels are numbers (best standardised) and ``net`` has one output per
        row; the loss is their mean squared error, and early stopping follows ``val_loss``.
        """
        import dataclasses

        # A resumed run may raise the epochs or change the world size (the checkpoint holds
        # the unwrapped module's weights, which any world size loads). The stream settings
        # count only for a streamed run, which orders its rows by them.
        settings = {k: v for k, v in dataclasses.asdict(self.cfg).items()
                    if k not in ("epochs", "distributed", "stream")}
        weighted = () if class_weight is None else (class_weight,)  # unweighted runs keep their old ids
        task = ("regression",) if regression else ()  # classification runs keep their old ids
        streamed = ({"shuffle_row_groups": self.cfg.stream.shuffle_row_groups},) if isinstance(train, FeatureFile) else ()
        val_parts = val.fingerprint_parts() if val is not None else (None, None)
        run_id = fingerprint(identity, settings, *weighted, *task, *streamed, *train.fingerprint_parts(), *val_parts)
        run = self._start(net, train, val, optimizer_factory, scheduler_factory, run_id, regression)
        if class_weight is not None:
            import torch

            run.weight = torch.as_tensor(class_weight, dtype=torch.float32, device=run.device)
        self._resume(run)
        while run.state.epoch < self.cfg.epochs:
            record = self._epoch(run, run.state.epoch + 1)
            stop = self._settle(run, record)
            if run.rank is not None:  # rank 0's decision on every rank, whatever the reduction order
                stop = distributed.agree(stop, run.device)
            if stop:
                break
        if run.best is not None:
            net.load_state_dict(run.best)
        if self.checkpoint_dir is not None and run.writes:
            mark_complete(self.checkpoint_dir)
        run.result.history, run.result.best_epoch = run.state.history, run.state.best_epoch
        run.result.peak_rows = max(run.train.peak_rows, run.val.peak_rows if run.val is not None else 0)
        return run.result

    def _start(self, net: Any, train: ArrayRows | FeatureFile, val: ArrayRows | FeatureFile | None,
               optimizer_factory: Callable[..., Any] | None, scheduler_factory: Callable[..., Any] | None,
               run_id: str, regression: bool = False) -> Run:
        """Device, precision and seeds; rows in memory moved to the device once; optimizer and scheduler."""
        import torch

        cfg = self.cfg
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        rank = distributed.current()
        cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
        device = resolve_device(cfg.device if rank is None else
                                distributed.rank_device(cfg.device, rank.local_rank, cuda_devices))
        seed_everything(cfg.seed, cfg.deterministic, device)
        amp_dtype = autocast_dtype(cfg.precision.value, device)
        net.to(device)
        model = net if rank is None else distributed.wrap(net, device)
        has_val = val is not None and val.rows > 0
        optimizer = (optimizer_factory or _default_optimizer)(net.parameters())
        window = cfg.stream.shuffle_row_groups
        monitor = cfg.early_stopping.monitor.value if has_val else "train_loss"
        if regression and monitor == "val_accuracy":
            log.info("regression: early stopping follows val_loss (there is no accuracy) "
                     "<trainer.early_stopping.monitor=val_accuracy>")
            monitor = "val_loss"

        return Run(
            net=net, model=model, device=device, amp_dtype=amp_dtype,
            train=device_rows(train, device, regression, window),
            val=device_rows(val, device, regression, window) if val is not None and has_val else None,
            optimizer=optimizer,
            scheduler=scheduler_factory(optimizer) if scheduler_factory else None,
            scaler=torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None,
            state=TrainState(fingerprint=run_id), result=FitReport(device=str(device)),
            monitor=monitor, rank=rank, regression=regression,
        )

    def _resume(self, run: Run) -> None:
        """Continue after the last complete epoch of a compatible checkpoint, if there is one
        (in a group: rank 0's, read by rank 0 and sent to the others)."""
        if self.checkpoint_dir is None:
            return
        raw = read_checkpoint(self.checkpoint_dir) if run.writes else None
        if run.rank is not None:
            tensor_bytes = distributed.share_bytes(raw[0] if raw else None, run.device)
            meta_bytes = distributed.share_bytes(raw[1] if raw else None, run.device)
            raw = (tensor_bytes, meta_bytes) if tensor_bytes else None
        found = parse_checkpoint(raw, run.state.fingerprint)
        if found is not None:
            run.state, tensors, meta = found
            run.best = restore(tensors, meta, run.net, run.optimizer, run.scheduler)
            run.result.resumed_from = run.state.epoch
            log.info("resuming from checkpoint after epoch %d of %d <trainer.checkpoint=true>",
                     run.state.epoch, self.cfg.epochs)

    def _epoch(self, run: Run, epoch: int) -> dict[str, Any]:
        """One pass over the training rows in a seeded order; the epoch's record (losses, lr, time)."""
        import torch

        started = time.perf_counter()
        n, optimizer = run.train.rows, run.optimizer
        me, world = (0, 1) if run.rank is None else (run.rank.rank, run.rank.world)
        run.model.train()
        if world > 1:  # each rank its own dropout masks, reproducible per epoch
            torch.manual_seed(self.cfg.seed * 100_003 + epoch * 1_009 + me + 1)
        spans = batch_spans(n, self.cfg.batch_size, world)
        # Seeded per epoch: the same order whether or not this run resumed, on every rank.
        batches = run.train.batches(self.cfg.seed, epoch, spans, me, world)
        losses: list[Any] = []  # detached per-batch losses; summed once per epoch, no sync
        for X_b, y_b, y_global in _bar(batches, len(spans), epoch, self.cfg.epochs) if self.progress else batches:
            with run.autocast():
                if world == 1:
                    loss = run.loss(run.model(X_b), y_b)
                else:  # this rank's rows of the global batch; DDP divides the summed gradients by world
                    loss = run.loss(run.model(X_b), y_b, run.denominator(y_global)) * world
            optimizer.zero_grad(set_to_none=True)
            if run.scaler is not None:
                run.scaler.scale(loss).backward()
                run.scaler.step(optimizer)
                run.scaler.update()
            else:
                loss.backward()
                optimizer.step()
            losses.append(loss.detach() / world)  # this rank's part of the global batch's mean loss
        if run.scheduler is not None:
            run.scheduler.step()
        sizes = torch.tensor([stop - start for start, stop in spans], device=run.device, dtype=torch.float32)
        total = (torch.stack(losses).float() * sizes).sum()
        if world > 1:
            total = distributed.all_sum(total)
        record = {"epoch": epoch, "train_loss": float(total / n), "lr": optimizer.param_groups[0]["lr"]}
        if run.val is not None:
            record.update(evaluate(run))
        record["seconds"] = round(time.perf_counter() - started, 4)
        return record

    def _settle(self, run: Run, record: dict[str, Any]) -> bool:
        """Record the epoch, keep the best weights, checkpoint; True when early stopping ends the run."""
        cfg, state, stopping = self.cfg, run.state, self.cfg.early_stopping
        state.history.append(record)
        state.epoch = epoch = int(record["epoch"])
        value = record[run.monitor]
        improved = state.best_metric is None or (
            value > state.best_metric + stopping.min_delta if run.monitor == "val_accuracy"
            else value < state.best_metric - stopping.min_delta
        )
        if improved:
            state.best_metric, state.best_epoch, state.bad_epochs = value, epoch, 0
            if run.writes:  # only the writer keeps the best weights
                run.best = {k: v.detach().clone() for k, v in run.net.state_dict().items()}
        else:
            state.bad_epochs += 1
        log.info("epoch %d/%d %s <trainer.epochs=%d>", epoch, cfg.epochs,
                 " ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "epoch"), cfg.epochs)
        if self.checkpoint_dir is not None and run.writes:
            save_checkpoint(self.checkpoint_dir, state, run.net, run.best, run.optimizer, run.scheduler)
        if stopping.enabled and state.bad_epochs >= stopping.patience:
            run.result.stopped_early = True
            log.info("early stop after epoch %d: %s did not improve for %d epochs "
                     "(best %.4g at epoch %d) <trainer.early_stopping.patience=%d>",
                     epoch, run.monitor, stopping.patience, state.best_metric, state.best_epoch,
                     stopping.patience)
            return True
        return False


def _default_optimizer(params: Any) -> Any:
    import torch

    return torch.optim.AdamW(params, lr=1e-3)


def _bar(steps: Any, total: int, epoch: int, epochs: int) -> Any:
    from tqdm import tqdm

    return tqdm(steps, total=total, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False, file=sys.stderr)
