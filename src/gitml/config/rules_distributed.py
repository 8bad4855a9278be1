"""Rules for ``trainer.distributed`` the schema's types cannot express (see :mod:`gitml.config.rules`).

Counts that "auto" leaves open (the GPUs of the machine that trains) are checked again when
the launcher knows them (:mod:`gitml.train.distributed`).
"""

from __future__ import annotations

import re

from gitml.config.checks import Problems, at_least
from gitml.config.schema import DistBackend, TrainerConfig

KEY = "trainer.distributed"
RDZV_BACKENDS = ("c10d", "static")
# host or [IPv6], then an optional :port; torch parses the same form (parse_rendezvous_endpoint).
ENDPOINT = r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:\d{1,5})?"


def ranks_per_node(value: object) -> int | None:
    """``nproc_per_node`` as a count, None for "auto" (or a value the rules refuse)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def distributed_problems(trainer: TrainerConfig) -> Problems:
    """Counts, a reachable rendezvous for several nodes, a backend the device can use."""
    dist = trainer.distributed
    problems: Problems = []
    nproc = ranks_per_node(dist.nproc_per_node)
    if dist.nproc_per_node != "auto" and (nproc is None or nproc < 1):
        problems.append((f"{KEY}.nproc_per_node", f"must be a whole number of at least 1 or 'auto', "
                         f"got {dist.nproc_per_node!r}."))
    problems += at_least(f"{KEY}.nnodes", dist.nnodes, 1)
    problems += at_least(f"{KEY}.max_restarts", dist.max_restarts, 0)
    if dist.rdzv_backend not in RDZV_BACKENDS:
        problems.append((f"{KEY}.rdzv_backend", f"unknown rendezvous {dist.rdzv_backend!r}. "
                         f"Allowed: {', '.join(RDZV_BACKENDS)}."))
    problems += _rendezvous_problems(trainer)
    if dist.backend is DistBackend.nccl and trainer.device in ("cpu", "mps"):
        problems.append((f"{KEY}.backend", f"nccl runs on CUDA only, but trainer.device is {trainer.device!r}. "
                         "Use backend auto or gloo, or trainer.device auto or cuda."))
    if re.fullmatch(r"cuda:\d+", trainer.device) and (nproc is None or nproc > 1):
        problems.append(("trainer.device", f"{trainer.device!r} names one GPU, but {KEY}.nproc_per_node is "
                         f"{dist.nproc_per_node!r}: each rank takes the GPU of its local rank. Use trainer.device=cuda."))
    if nproc is not None and dist.nnodes >= 1 and trainer.batch_size < 2 * nproc * dist.nnodes:
        problems.append(("trainer.batch_size", f"must be at least 2 rows per rank ({2 * nproc * dist.nnodes} for "
                         f"{nproc * dist.nnodes} ranks): each rank trains on its share of every batch, got "
                         f"{trainer.batch_size}."))
    return problems


def _rendezvous_problems(trainer: TrainerConfig) -> Problems:
    dist = trainer.distributed
    problems: Problems = []
    if dist.rdzv_endpoint and not re.fullmatch(ENDPOINT, dist.rdzv_endpoint):
        problems.append((f"{KEY}.rdzv_endpoint", f"must be host or host:port, got {dist.rdzv_endpoint!r}."))
    elif dist.nnodes > 1 and not dist.rdzv_endpoint:
        problems.append((f"{KEY}.rdzv_endpoint", f"{dist.nnodes} nodes need an endpoint every node reaches "
                         "(host:port of the first node, e.g. node0.example:29400)."))
    if dist.rdzv_backend == "static" and not re.search(r":\d{1,5}$", dist.rdzv_endpoint):
        problems.append((f"{KEY}.rdzv_endpoint", "the static rendezvous needs host:port (the first node's "
                         f"address and a free port), got {dist.rdzv_endpoint!r}."))
    if not 0 <= dist.node_rank < max(dist.nnodes, 1):
        problems.append((f"{KEY}.node_rank", f"must be between 0 and nnodes - 1 ({max(dist.nnodes, 1) - 1}), "
                         f"got {dist.node_rank}."))
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", dist.rdzv_id):
        problems.append((f"{KEY}.rdzv_id", f"must be letters, digits, '.', '_' or '-', got {dist.rdzv_id!r}."))
    return problems
