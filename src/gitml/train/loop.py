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
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from gitml.config.schema import TrainerConfig
from gitml.train.checkpoint import (
    TrainState,
    load_checkpoint,
    mark_complete,
    restore,
    save_checkpoint,
)
from gitml.train.device import autocast_dtype, resolve_device, seed_everything

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    resumed_from: int = 0  # epochs already done when this run started
    device: str = "cpu"


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
    """Fit a ``torch.nn.Module`` classifier with cross-entropy, per ``trainer.*``.

    Example:
        >>> trainer = Trainer(TrainerConfig(epochs=5), checkpoint_dir=Path("models/checkpoints"))
        >>> result = trainer.fit(net, X, y, X_val, y_val, optimizer_factory=partial(AdamW, lr=1e-3))
    """

    def __init__(self, cfg: TrainerConfig, checkpoint_dir: Path | None = None,
                 run_fingerprint: str = "", progress: bool | None = None):
        self.cfg = cfg
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir and cfg.checkpoint else None
        self.run_fingerprint = run_fingerprint
        self.progress = sys.stderr.isatty() if progress is None else progress

    def fit(
        self, net: Any, X: Any, y: Any, X_val: Any = None, y_val: Any = None,
        optimizer_factory: Callable[..., Any] | None = None,
        scheduler_factory: Callable[..., Any] | None = None,
    ) -> TrainResult:
        import torch

        cfg = self.cfg
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        device = resolve_device(cfg.device)
        seed_everything(cfg.seed, cfg.deterministic, device)
        amp_dtype = autocast_dtype(cfg.precision.value, device)
        scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
        autocast = (
            partial(torch.autocast, device.type, dtype=amp_dtype) if amp_dtype is not None
            else contextlib.nullcontext
        )

        net.to(device)
        X_t = torch.as_tensor(X, dtype=torch.float32, device=device)
        y_t = torch.as_tensor(y, dtype=torch.long, device=device)
        has_val = X_val is not None and len(X_val) > 0
        if has_val:
            Xv = torch.as_tensor(X_val, dtype=torch.float32, device=device)
            yv = torch.as_tensor(y_val, dtype=torch.long, device=device)
        optimizer = (optimizer_factory or _default_optimizer)(net.parameters())
        scheduler = scheduler_factory(optimizer) if scheduler_factory else None

        state = TrainState(fingerprint=self.run_fingerprint)
        best: dict[str, Any] | None = None
        result = TrainResult(device=str(device))
        if self.checkpoint_dir is not None:
            found = load_checkpoint(self.checkpoint_dir, self.run_fingerprint)
            if found is not None:
                state, tensors, meta = found
                best = restore(tensors, meta, net, optimizer, scheduler)
                result.resumed_from = state.epoch
                log.info("resuming from checkpoint after epoch %d of %d <trainer.checkpoint=true>",
                         state.epoch, cfg.epochs)

        stopping = cfg.early_stopping
        monitor = stopping.monitor.value if has_val else "train_loss"
        maximize = monitor == "val_accuracy"
        n, batch = len(X_t), cfg.batch_size
        while state.epoch < cfg.epochs:
            epoch = state.epoch + 1
            started = time.perf_counter()
            net.train()
            # Seeded per epoch: the same order whether or not this run resumed.
            order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
            order = order.to(device)
            # A batch of one would break BatchNorm: fold a lone last row into the batch before.
            stops = [*range(0, n, batch), n]
            if len(stops) > 2 and stops[-1] - stops[-2] == 1:
                stops.pop(-2)
            spans = list(itertools.pairwise(stops))
            losses: list[Any] = []  # detached per-batch losses; summed once per epoch, no sync
            for start, stop in _bar(spans, epoch, cfg.epochs) if self.progress else spans:
                index = order[start:stop]
                xb, yb = X_t[index], y_t[index]
                with autocast():
                    loss = torch.nn.functional.cross_entropy(net(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                losses.append(loss.detach())
            if scheduler is not None:
                scheduler.step()
            sizes = torch.tensor([stop - start for start, stop in spans], device=device, dtype=torch.float32)
            train_loss = float((torch.stack(losses).float() * sizes).sum() / n)
            record = {"epoch": epoch, "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"]}
            if has_val:
                record.update(_evaluate(net, Xv, yv, amp_dtype, device))
            record["seconds"] = round(time.perf_counter() - started, 4)
            state.history.append(record)
            state.epoch = epoch

            value = record[monitor]
            improved = state.best_metric is None or (
                value > state.best_metric + stopping.min_delta if maximize
                else value < state.best_metric - stopping.min_delta
            )
            if improved:
                state.best_metric, state.best_epoch, state.bad_epochs = value, epoch, 0
                best = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                state.bad_epochs += 1
            log.info("epoch %d/%d %s <trainer.epochs=%d>", epoch, cfg.epochs,
                     " ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "epoch"), cfg.epochs)
            if self.checkpoint_dir is not None:
                save_checkpoint(self.checkpoint_dir, state, net, best, optimizer, scheduler)
            if stopping.enabled and state.bad_epochs >= stopping.patience:
                result.stopped_early = True
                log.info("early stop after epoch %d: %s did not improve for %d epochs "
                         "(best %.4g at epoch %d) <trainer.early_stopping.patience=%d>",
                         epoch, monitor, stopping.patience, state.best_metric, state.best_epoch,
                         stopping.patience)
                break

        if best is not None:
            net.load_state_dict(best)
        if self.checkpoint_dir is not None:
            mark_complete(self.checkpoint_dir)
        result.history, result.best_epoch = state.history, state.best_epoch
        return result


def _evaluate(net: Any, X: Any, y: Any, amp_dtype: Any, device: Any, chunk: int = 65536) -> dict[str, float]:
    import torch

    net.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        for start in range(0, len(X), chunk):
            logits = net(X[start : start + chunk]).float()
            target = y[start : start + chunk]
            loss_sum += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(1) == target).sum())
    loss = loss_sum / len(X)
    return {"val_loss": loss if math.isfinite(loss) else float("inf"), "val_accuracy": correct / len(X)}


def _default_optimizer(params: Any) -> Any:
    import torch

    return torch.optim.AdamW(params, lr=1e-3)


def _bar(steps: list[Any], epoch: int, epochs: int) -> Any:
    from tqdm import tqdm

    return tqdm(steps, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False, file=sys.stderr)
