"""Per-epoch training checkpoints without pickle: tensors in safetensors, the rest in JSON.

A checkpoint is a folder written atomically (temp folder + rename), so a kill at any
moment leaves either the previous checkpoint or the new one, never half of one. It
carries a fingerprint of the config and data: a checkpoint from other settings is
ignored rather than resumed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitml.utils.atomic import atomic_path

TENSORS, STATE = "state.safetensors", "state.json"


@dataclass
class TrainState:
    fingerprint: str
    epoch: int = 0  # epochs completed
    history: list[dict[str, float]] = field(default_factory=list)
    best_metric: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    complete: bool = False


def save_checkpoint(
    folder: Path, state: TrainState, model: Any, best: dict[str, Any] | None,
    optimizer: Any, scheduler: Any,
) -> None:
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, Any] = {f"model.{k}": v for k, v in model.state_dict().items()}
    if best is not None:
        tensors.update({f"best.{k}": v for k, v in best.items()})
    opt_state = optimizer.state_dict()
    opt_plain: dict[str, dict[str, Any]] = {}
    for pid, values in opt_state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"opt.{pid}.{name}"] = value
            else:
                opt_plain.setdefault(str(pid), {})[name] = value
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = rng
    meta = {
        "train": asdict(state),
        "optimizer": {"param_groups": opt_state["param_groups"], "plain": opt_plain},
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
    }
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / TENSORS))
        (tmp / STATE).write_text(json.dumps(meta, default=_plain), encoding="utf-8")


def load_checkpoint(folder: Path, fingerprint: str) -> tuple[TrainState, dict[str, Any], dict[str, Any]] | None:
    """The checkpoint in ``folder`` if it matches ``fingerprint`` and is unfinished, else None."""
    return parse_checkpoint(read_checkpoint(folder), fingerprint)


def read_checkpoint(folder: Path) -> tuple[bytes, bytes] | None:
    """The bytes of the checkpoint's tensors and state, None when there is none.

    Distributed ranks get rank 0's bytes (train/distributed.py's share_bytes), so the nodes
    of a multi-node job need no shared disk to resume.
    """
    if not (folder / STATE).is_file() or not (folder / TENSORS).is_file():
        return None
    return (folder / TENSORS).read_bytes(), (folder / STATE).read_bytes()


def parse_checkpoint(found: tuple[bytes, bytes] | None,
                     fingerprint: str) -> tuple[TrainState, dict[str, Any], dict[str, Any]] | None:
    """State, tensors and metadata of :func:`read_checkpoint`'s bytes if they match ``fingerprint``
    and the run is unfinished, else None."""
    from safetensors.torch import load

    if found is None:
        return None
    tensors, meta_bytes = found
    meta = json.loads(meta_bytes.decode("utf-8"))
    state = TrainState(**meta["train"])
    if state.fingerprint != fingerprint or state.complete:
        return None
    return state, load(tensors), meta


def restore(tensors: dict[str, Any], meta: dict[str, Any], model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any] | None:
    """Put model, optimizer, scheduler and RNG back as they were; return the best weights."""
    import torch

    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, values in meta["optimizer"]["plain"].items():
        state.setdefault(int(pid), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    if scheduler is not None and meta.get("scheduler") is not None:
        scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    return best


def mark_complete(folder: Path) -> None:
    """Flag the checkpoint as finished, so a forced rerun trains from scratch."""
    from gitml.utils.atomic import write_text

    path = folder / STATE
    if path.is_file():
        meta = json.loads(path.read_text(encoding="utf-8"))
        meta["train"]["complete"] = True
        write_text(path, json.dumps(meta))


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | set):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot checkpoint a {type(value).__name__} in optimizer/scheduler state")
