"""The training loop for PyTorch models on tabular data held in memory.

Tabular data fits in memory, so the whole training set is moved to the device once and
each epoch shuffles by one permutation and slices batches out of it: no per-sample
DataLoader, no collation, no worker processes. See ``benchmarks/bench_trainer.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml.config.schema import TrainerConfig
from gitml.models import FitReport
from gitml.train.checkpoint import (
    TrainState,
    load_checkpoint,
    mark_complete,
    restore,
    save_checkpoint,
)
from gitml.train.device import autocast_dtype, resolve_device, seed_everything

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
        """Train ``net`` for ``trainer.epochs`` (resuming a checkpoint, stopping early); keep the best weights.

        ``class_weight``: one loss weight per class (``model.class_weight``), for the
        training loss and the validation loss early stopping follows; None weighs rows alike.
        ``regression``: ``y`` holds numbers (best standardised) and ``net`` one output per row;
        the loss is their mean squared error, and early stopping follows ``val_loss``.
        """
        import dataclasses

        settings = {k: v for k, v in dataclasses.asdict(self.cfg).items() if k != "epochs"}
        weighted = () if class_weight is None else (class_weight,)  # unweighted runs keep their old ids
        task = ("regression",) if regression else ()  # classification runs keep their old ids
        run_id = fingerprint(identity, settings, *weighted, *task, X, y, X_val, y_val)
        run = self._start(net, X, y, X_val, y_val, optimizer_factory, scheduler_factory, run_id, regression)
        if class_weight is not None:
            import torch

            run.weight = torch.as_tensor(class_weight, dtype=torch.float32, device=run.device)
        self._resume(run)
        while run.state.epoch < self.cfg.epochs:
            record = self._epoch(run, run.state.epoch + 1)
            if self._settle(run, record):
                break
        if run.best is not None:
            net.load_state_dict(run.best)
        if self.checkpoint_dir is not None:
            mark_complete(self.checkpoint_dir)
        run.result.history, run.result.best_epoch = run.state.history, run.state.best_epoch
        return run.result

    def _start(self, net: Any, X: Any, y: Any, X_val: Any, y_val: Any,
               optimizer_factory: Callable[..., Any] | None, scheduler_factory: Callable[..., Any] | None,
               run_id: str, regression: bool = False) -> _Run:
        """Device, precision and seeds; the data moved to the device once; optimizer and scheduler."""
        import torch

        cfg = self.cfg
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        device = resolve_device(cfg.device)
        seed_everything(cfg.seed, cfg.deterministic, device)
        amp_dtype = autocast_dtype(cfg.precision.value, device)
        net.to(device)
        has_val = X_val is not None and len(X_val) > 0
        optimizer = (optimizer_factory or _default_optimizer)(net.parameters())

        def tensors(features: Any, labels: Any) -> tuple[Any, Any]:
            return (torch.as_tensor(features, dtype=torch.float32, device=device),
                    torch.as_tensor(labels, dtype=torch.float32 if regression else torch.long, device=device))

        monitor = cfg.early_stopping.monitor.value if has_val else "train_loss"
        if regression and monitor == "val_accuracy":
            log.info("regression: early stopping follows val_loss (there is no accuracy) "
                     "<trainer.early_stopping.monitor=val_accuracy>")
            monitor = "val_loss"

        return _Run(
            net=net, device=device, amp_dtype=amp_dtype, train=tensors(X, y),
            val=tensors(X_val, y_val) if has_val else None, optimizer=optimizer,
            scheduler=scheduler_factory(optimizer) if scheduler_factory else None,
            scaler=torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None,
            state=TrainState(fingerprint=run_id), result=FitReport(device=str(device)),
            monitor=monitor, regression=regression,
        )

    def _resume(self, run: _Run) -> None:
        """Continue after the last complete epoch of a compatible checkpoint, if there is one."""
        if self.checkpoint_dir is None:
            return
        found = load_checkpoint(self.checkpoint_dir, run.state.fingerprint)
        if found is not None:
            run.state, tensors, meta = found
            run.best = restore(tensors, meta, run.net, run.optimizer, run.scheduler)
            run.result.resumed_from = run.state.epoch
            log.info("resuming from checkpoint after epoch %d of %d <trainer.checkpoint=true>",
                     run.state.epoch, self.cfg.epochs)

    def _epoch(self, run: _Run, epoch: int) -> dict[str, Any]:
        """One pass over the training rows in a seeded order; the epoch's record (losses, lr, time)."""
        import torch

        started = time.perf_counter()
        X_t, y_t = run.train
        n, net, optimizer = len(X_t), run.net, run.optimizer
        net.train()
        # Seeded per epoch: the same order whether or not this run resumed.
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch))
        order = order.to(run.device)
        spans = _batch_spans(n, self.cfg.batch_size)
        losses: list[Any] = []  # detached per-batch losses; summed once per epoch, no sync
        for start, stop in _bar(spans, epoch, self.cfg.epochs) if self.progress else spans:
            index = order[start:stop]
            with run.autocast():
                loss = run.loss(net(X_t[index]), y_t[index])
            optimizer.zero_grad(set_to_none=True)
            if run.scaler is not None:
                run.scaler.scale(loss).backward()
                run.scaler.step(optimizer)
                run.scaler.update()
            else:
                loss.backward()
                optimizer.step()
            losses.append(loss.detach())
        if run.scheduler is not None:
            run.scheduler.step()
        sizes = torch.tensor([stop - start for start, stop in spans], device=run.device, dtype=torch.float32)
        record = {"epoch": epoch, "train_loss": float((torch.stack(losses).float() * sizes).sum() / n),
                  "lr": optimizer.param_groups[0]["lr"]}
        if run.val is not None:
            record.update(_evaluate(net, *run.val, run.amp_dtype, run.device, run.weight, run.regression))
        record["seconds"] = round(time.perf_counter() - started, 4)
        return record

    def _settle(self, run: _Run, record: dict[str, Any]) -> bool:
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
            run.best = {k: v.detach().clone() for k, v in run.net.state_dict().items()}
        else:
            state.bad_epochs += 1
        log.info("epoch %d/%d %s <trainer.epochs=%d>", epoch, cfg.epochs,
                 " ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "epoch"), cfg.epochs)
        if self.checkpoint_dir is not None:
            save_checkpoint(self.checkpoint_dir, state, run.net, run.best, run.optimizer, run.scheduler)
        if stopping.enabled and state.bad_epochs >= stopping.patience:
            run.result.stopped_early = True
            log.info("early stop after epoch %d: %s did not improve for %d epochs "
                     "(best %.4g at epoch %d) <trainer.early_stopping.patience=%d>",
                     epoch, run.monitor, stopping.patience, state.best_metric, state.best_epoch,
                     stopping.patience)
            return True
        return False


@dataclass
class _Run:
    """What one :meth:`Trainer.fit` call works with, from set-up to the last epoch."""

    net: Any
    device: Any
    amp_dtype: Any
    train: tuple[Any, Any]  # features and labels, on the device
    val: tuple[Any, Any] | None
    optimizer: Any
    scheduler: Any
    scaler: Any  # float16 gradient scaling, or None
    state: TrainState
    result: FitReport
    monitor: str  # the record key early stopping and the best weights follow
    best: dict[str, Any] | None = None
    weight: Any = None  # per-class loss weights on the device, or None
    regression: bool = False  # one output per row and mean squared error

    def loss(self, output: Any, target: Any) -> Any:
        import torch

        if self.regression:
            return torch.nn.functional.mse_loss(output.float().squeeze(1), target)
        return torch.nn.functional.cross_entropy(output, target, weight=self.weight)

    def autocast(self) -> Any:
        import torch

        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)


def _batch_spans(n: int, batch: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each batch; a lone last row joins the batch before (BatchNorm needs two)."""
    stops = [*range(0, n, batch), n]
    if len(stops) > 2 and stops[-1] - stops[-2] == 1:
        stops.pop(-2)
    return list(itertools.pairwise(stops))


def _evaluate(net: Any, X: Any, y: Any, amp_dtype: Any, device: Any, weight: Any = None,
              regression: bool = False, chunk: int = 65536) -> dict[str, float]:
    """Validation loss (weighted as training is: a weighted mean over rows) and accuracy;
    for regression, the mean squared error alone."""
    import torch

    net.eval()
    if regression:
        with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            squared = sum(float(((net(X[start : start + chunk]).float().squeeze(1) - y[start : start + chunk]) ** 2)
                                .sum()) for start in range(0, len(X), chunk))
        loss = squared / len(X)
        return {"val_loss": loss if math.isfinite(loss) else float("inf")}
    loss_sum, correct = 0.0, 0
    total = float(len(X)) if weight is None else float(weight[y].sum())
    with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        for start in range(0, len(X), chunk):
            logits = net(X[start : start + chunk]).float()
            target = y[start : start + chunk]
            loss_sum += float(torch.nn.functional.cross_entropy(logits, target, weight=weight, reduction="sum"))
            correct += int((logits.argmax(1) == target).sum())
    loss = loss_sum / total
    return {"val_loss": loss if math.isfinite(loss) else float("inf"), "val_accuracy": correct / len(X)}


def _default_optimizer(params: Any) -> Any:
    import torch

    return torch.optim.AdamW(params, lr=1e-3)


def _bar(steps: list[Any], epoch: int, epochs: int) -> Any:
    from tqdm import tqdm

    return tqdm(steps, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False, file=sys.stderr)
