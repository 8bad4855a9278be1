"""Device resolution and seeding from ``trainer.*``."""

from __future__ import annotations

import logging
import os
import random
import re
from typing import Any

from gitml.errors import DeviceError

log = logging.getLogger(__name__)


def resolve_device(spec: str) -> Any:
    """``auto`` -> CUDA when available, else CPU; ``cpu``, ``cuda``, ``cuda:N``, ``mps`` as asked.

    Asking for a device the machine lacks is an error, never a silent fallback.
    """
    import torch

    if spec == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        log.info("training on %s <trainer.device=auto>", device)
        return device
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if match:
        if not torch.cuda.is_available():
            raise DeviceError(
                f"'trainer.device' is '{spec}' but CUDA is not available on this machine. "
                "Use trainer.device=auto (CUDA when present, else CPU) or trainer=cpu."
            )
        index = int(match.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"'trainer.device' is '{spec}' but only {torch.cuda.device_count()} CUDA device(s) exist."
            )
        return torch.device("cuda", index)
    if spec == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError("'trainer.device' is 'mps' but MPS is not available on this machine.")
        return torch.device("mps")
    if spec == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"Unknown 'trainer.device' '{spec}'. Allowed: auto, cpu, cuda, cuda:N, mps.")


def seed_everything(seed: int, deterministic: bool, device: Any = None) -> None:
    """Seed python, numpy and torch; with ``deterministic`` use deterministic kernels only.

    CPU kernels used here are already deterministic for a fixed thread count, and
    ``torch.use_deterministic_algorithms`` costs a 2 s import of torch's compiler stack,
    so the switch is only thrown for accelerators.
    """
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if device is None or device.type == "cpu":
        return
    if deterministic:
        # cuBLAS needs this before its first use to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = True


def autocast_dtype(precision: str, device: Any) -> Any:
    """The autocast dtype for ``trainer.precision`` on ``device``; None means plain fp32."""
    import torch

    if precision == "fp32":
        return None
    if device.type != "cuda":
        log.info("mixed precision applies on CUDA only; training in fp32 on %s <trainer.precision=%s>",
                 device, precision)
        return None
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise DeviceError("'trainer.precision' is 'bf16' but this GPU does not support bfloat16; use fp16.")
    return torch.bfloat16 if precision == "bf16" else torch.float16
