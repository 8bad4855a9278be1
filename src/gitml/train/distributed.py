"""Data-parallel training on PyTorch's own distributed runtime (docs/distributed.md).

``trainer.distributed`` asks for more than one rank: :func:`launch` starts them through
``torch.distributed.launcher`` (the elastic agent torchrun runs: rendezvous, failure
detection, teardown of the group when a rank dies), each rank running the same function.
A process torchrun started (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) :func:`join`\\ s the
group torchrun made instead of launching again. Each rank holds the whole in-memory data,
trains on its share of every global batch and reduces what early stopping reads, so every
rank takes the same decisions; rank 0 alone writes.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gitml.config.rules_distributed import ranks_per_node
from gitml.config.schema import DistBackend, DistributedConfig, TrainerConfig
from gitml.errors import DeviceError, DistributedError

log = logging.getLogger(__name__)
RANK_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")  # what torchrun (and our launcher) give each rank
STANDALONE = "127.0.0.1:0"  # one machine: a c10d store on a free loopback port (torchrun --standalone)


@dataclass(frozen=True)
class Rank:
    """This process's place in the group."""

    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def writes(self) -> bool:
        """Rank 0 alone writes checkpoints, curves, summaries and the model."""
        return self.rank == 0


def launched_by_torchrun(env: Mapping[str, str] = os.environ) -> bool:
    """Was this process started as a rank (by torchrun, a PyTorchJob or our own launcher)?"""
    return all(name in env for name in RANK_ENV)


def local_ranks(dist: DistributedConfig, device: str, cuda_devices: int) -> int:
    """Ranks on this machine: the number asked, or for "auto" one per visible GPU when the
    trainer would train on CUDA, else 1 (one CPU process already uses every core)."""
    count = ranks_per_node(dist.nproc_per_node)
    if count is not None:
        return count
    return cuda_devices if cuda_devices > 0 and device in ("auto", "cuda") else 1


def backend_for(choice: DistBackend, device_type: str) -> str:
    """``auto``: nccl on CUDA, gloo elsewhere; nccl off CUDA is an error, not a fallback."""
    if choice is DistBackend.auto:
        return "nccl" if device_type == "cuda" else "gloo"
    if choice is DistBackend.nccl and device_type != "cuda":
        raise DeviceError(f"'trainer.distributed.backend' is 'nccl' but this rank trains on {device_type}: "
                          "nccl runs on CUDA only. Use backend auto or gloo.")
    return choice.value


def rank_device(spec: str, local_rank: int, cuda_devices: int) -> str:
    """A rank's device: ``auto`` and ``cuda`` take the GPU of the local rank when there is one."""
    if spec == "auto":
        return f"cuda:{local_rank}" if cuda_devices > 0 else "cpu"
    if spec == "cuda":
        if local_rank >= cuda_devices:
            raise DeviceError(f"'trainer.device' is 'cuda' on local rank {local_rank}, but this machine has "
                              f"{cuda_devices} CUDA device(s): set trainer.distributed.nproc_per_node to at most "
                              f"{cuda_devices} (or auto).")
        return f"cuda:{local_rank}"
    return spec


def launch_settings(dist: DistributedConfig, nproc: int) -> dict[str, Any]:
    """``LaunchConfig`` keywords for ``dist`` with ``nproc`` ranks here, as torchrun's options set them."""
    settings: dict[str, Any] = {
        "min_nodes": dist.nnodes, "max_nodes": dist.nnodes, "nproc_per_node": nproc,
        "rdzv_backend": dist.rdzv_backend, "rdzv_endpoint": dist.rdzv_endpoint, "run_id": dist.rdzv_id,
        "max_restarts": dist.max_restarts, "start_method": "spawn", "monitor_interval": 0.1,
    }
    if dist.nnodes == 1 and not dist.rdzv_endpoint:
        # A run id of its own, so two jobs on one machine never meet at the rendezvous.
        settings.update(rdzv_backend="c10d", rdzv_endpoint=STANDALONE, local_addr="127.0.0.1",
                        run_id=f"{dist.rdzv_id}-{uuid.uuid4().hex[:12]}")
    if settings["rdzv_backend"] == "static":
        settings["rdzv_configs"] = {"rank": dist.node_rank}
    return settings


def launch(trainer: TrainerConfig, nproc: int, entrypoint: Callable[..., Any], *args: Any) -> dict[int, Any]:
    """Run ``entrypoint(*args)`` on ``nproc`` ranks here (and as many on each other node); each
    local rank's return value by global rank. A failed rank stops the group: DistributedError."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    dist = trainer.distributed
    settings = launch_settings(dist, nproc)
    log.info("launching %d rank(s) on this machine, %d machine(s), rendezvous %s at %s "
             "<trainer.distributed.nproc_per_node=%s>", nproc, dist.nnodes, settings["rdzv_backend"],
             settings["rdzv_endpoint"], dist.nproc_per_node)
    try:
        return elastic_launch(LaunchConfig(**settings), entrypoint)(*args)
    except ChildFailedError as exc:
        raise DistributedError(failure_message(exc.failures, dist.max_restarts)) from None


def failure_message(failures: Mapping[int, Any], restarts: int) -> str:
    """One sentence per failed rank (its exit or signal and its own error), then what it means."""
    lines = []
    for rank, failure in sorted(failures.items()):
        how = (f"was killed by signal {failure.signal_name()}" if failure.exitcode < 0
               else f"exited with code {failure.exitcode}")
        cause = failure.message.get("message", "") if isinstance(failure.message, dict) else ""
        lines.append(f"rank {rank} (pid {failure.pid}) {how}{': ' + cause.splitlines()[0] if cause else ''}.")
    tried = f" after {restarts} restart(s) <trainer.distributed.max_restarts={restarts}>" if restarts else ""
    return (f"Distributed training failed{tried}: {' '.join(lines)} The launcher stopped every rank; "
            "rank 0 writes the model folder whole after the last epoch, or not at all.")


def join(trainer: TrainerConfig, env: Mapping[str, str] = os.environ) -> Rank:
    """Join the process group this rank was started for; set its device and CPU threads."""
    import torch
    import torch.distributed as dist

    rank, world, local = (int(env[name]) for name in RANK_ENV)
    if trainer.batch_size < 2 * world:
        raise DistributedError(f"'trainer.batch_size' is {trainer.batch_size}, under 2 rows for each of {world} ranks: "
                               f"each rank trains on its share of every batch. Use at least {2 * world}.")
    cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = torch.device(rank_device(trainer.device, local, cuda_devices))
    backend = backend_for(trainer.distributed.backend, device.type)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    elif trainer.num_threads is None and "OMP_NUM_THREADS" not in env:
        # Each rank would take every core; share them out (torchrun sets OMP_NUM_THREADS=1).
        local_world = int(env.get("LOCAL_WORLD_SIZE", "1"))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    dist.init_process_group(backend=backend)
    log.info("rank %d of %d (local %d, pid %d) on %s, %s <trainer.distributed.backend=%s>", rank, world, local,
             os.getpid(), device, backend, trainer.distributed.backend.value)
    return Rank(rank=rank, world=world, local_rank=local, backend=backend)


def current() -> Rank | None:
    """This process's rank when it trains in a group of more than one, else None."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return Rank(rank=dist.get_rank(), world=dist.get_world_size(),
                local_rank=int(os.environ.get("LOCAL_RANK", "0")), backend=str(dist.get_backend()))


def leave() -> None:
    """Leave the process group, if this process joined one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_logging(level: int) -> None:
    """A launched rank's log lines, on stderr, prefixed with its rank (``gitml[rank 1]: ...``)."""
    rank = os.environ.get("RANK", "?")
    logging.basicConfig(level=level, format=f"gitml[rank {rank}]: %(message)s", stream=sys.stderr)


def quiet_unless_writer(rank: Rank) -> None:
    """Ranks other than 0 log warnings only after joining: they reach the same epochs and
    decisions, and rank 0 says them once."""
    if not rank.writes:
        logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))


def wrap(net: Any, device: Any) -> Any:
    """``net`` under DistributedDataParallel (SyncBatchNorm on CUDA, where torch supports it)."""
    import torch

    if device.type == "cuda":
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        return torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index])
    return torch.nn.parallel.DistributedDataParallel(net)


def all_sum(values: Any) -> Any:
    """The element-wise sum of ``values`` (a tensor on this rank's device) over every rank."""
    import torch.distributed as dist

    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def share_bytes(data: bytes | None, device: Any) -> bytes:
    """Rank 0's ``data`` on every rank (its length first, then the bytes): no pickle, no shared disk."""
    import torch
    import torch.distributed as dist

    size = torch.tensor([len(data) if data is not None else 0], dtype=torch.int64, device=device)
    dist.broadcast(size, src=0)
    buffer = (torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device) if data
              else torch.empty(int(size.item()), dtype=torch.uint8, device=device))
    if int(size.item()):
        dist.broadcast(buffer, src=0)
    return buffer.cpu().numpy().tobytes()


def agree(flag: bool, device: Any) -> bool:
    """Rank 0's ``flag`` on every rank."""
    import torch
    import torch.distributed as dist

    value = torch.tensor([int(flag)], dtype=torch.int64, device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def sync_buffers(net: Any) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank, before an evaluation."""
    import torch.distributed as dist

    for buffer in net.buffers():
        dist.broadcast(buffer, src=0)
