"""What one :meth:`~gitml.train.loop.Trainer.fit` call works with: the run, its batches, its losses
and the validation pass, in one process or as one rank of several (:mod:`gitml.train.distributed`)."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gitml.models import FitReport
from gitml.train.batches import StreamedRows, TensorRows
from gitml.train.checkpoint import TrainState
from gitml.train.distributed import Rank


@dataclass
class Run:
    """A fit from set-up to the last epoch."""

    net: Any  # the module whose weights are checkpointed and kept (never the DDP wrapper)
    model: Any  # what the training step calls: ``net``, or ``net`` under DistributedDataParallel
    device: Any
    amp_dtype: Any
    train: TensorRows | StreamedRows  # the training rows on the device, or streamed (every rank reads all)
    val: TensorRows | StreamedRows | None
    optimizer: Any
    scheduler: Any
    scaler: Any  # float16 gradient scaling, or None
    state: TrainState
    result: FitReport
    monitor: str  # the record key early stopping and the best weights follow
    rank: Rank | None = None  # this process's place in a group of several, else None
    best: dict[str, Any] | None = None
    weight: Any = None  # per-class loss weights on the device, or None
    regression: bool = False  # one output per row and mean squared error

    @property
    def writes(self) -> bool:
        """Does this process write checkpoints (one process, or rank 0)?"""
        return self.rank is None or self.rank.writes

    def loss(self, output: Any, target: Any, denominator: Any = None) -> Any:
        """The batch's mean loss; with ``denominator`` (a rank's share of a global batch), the
        sum over these rows divided by the global batch's row count (or class weight)."""
        import torch

        functional = torch.nn.functional
        if denominator is None:
            if self.regression:
                return functional.mse_loss(output.float().squeeze(1), target)
            return functional.cross_entropy(output, target, weight=self.weight)
        if self.regression:
            return functional.mse_loss(output.float().squeeze(1), target, reduction="sum") / denominator
        return functional.cross_entropy(output, target, weight=self.weight, reduction="sum") / denominator

    def denominator(self, target: Any) -> Any:
        """What a global batch's mean loss divides by: its rows, or the sum of their class weights."""
        if self.weight is None or self.regression:
            return float(len(target))
        return self.weight[target].sum()

    def autocast(self) -> Any:
        import torch

        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)


def batch_spans(n: int, batch: int, world: int = 1) -> list[tuple[int, int]]:
    """``(start, stop)`` of each global batch; a last batch under two rows per rank joins the one
    before (BatchNorm needs two rows on each rank).

    Example:
        >>> batch_spans(5, 2)
        [(0, 2), (2, 5)]
    """
    stops = [*range(0, n, batch), n]
    if len(stops) > 2 and stops[-1] - stops[-2] < 2 * world:
        stops.pop(-2)
    return list(itertools.pairwise(stops))


def evaluate(run: Run, chunk: int = 65536) -> dict[str, float]:
    """Validation loss (weighted as training is: a weighted mean over rows) and accuracy; for
    regression the mean squared error alone. Ranks each take every ``world``-th row and add up."""
    import torch

    from gitml.train import distributed

    assert run.val is not None
    me, world = (0, 1) if run.rank is None else (run.rank.rank, run.rank.world)
    if run.rank is not None:
        distributed.sync_buffers(run.net)  # rank 0's BatchNorm statistics, as in the saved model
    sums = _sums(run, run.val.chunks(me, world, chunk))
    if run.rank is not None:
        sums = distributed.all_sum(torch.tensor(sums, dtype=torch.float64, device=run.device)).tolist()
    loss_sum, correct, total, rows = sums
    loss = loss_sum / total
    loss = loss if math.isfinite(loss) else float("inf")
    return {"val_loss": loss} if run.regression else {"val_loss": loss, "val_accuracy": correct / rows}


def _sums(run: Run, chunks: Iterator[tuple[Any, Any]]) -> list[float]:
    """Loss sum, correct answers, what the loss divides by (rows or class weight) and rows."""
    import torch

    net, amp_dtype, device, weight = run.net, run.amp_dtype, run.device, run.weight
    net.eval()
    loss_sum, correct, total, rows = 0.0, 0, 0.0, 0
    with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        for X, y in chunks:
            output = net(X).float()
            rows += len(X)
            if run.regression:
                loss_sum += float(((output.squeeze(1) - y) ** 2).sum())
                continue
            loss_sum += float(torch.nn.functional.cross_entropy(output, y, weight=weight, reduction="sum"))
            correct += int((output.argmax(1) == y).sum())
            total += float(len(X)) if weight is None else float(weight[y].sum())
    return [loss_sum, float(correct), total if not run.regression else float(rows), float(rows)]
