"""The torch_mlp family's inference engine: the saved network's forward pass in NumPy.

A loaded torch_mlp model only predicts (evaluate, package, gate, serve, drift), and importing
torch costs ~2 s of every such process: more than the whole forward pass of a tabular MLP
over its test rows. The network is a fixed stack (Linear, BatchNorm1d in eval mode, one
activation, Dropout as identity), so its eval-mode forward pass is a few matrix products.
The weights are read with ``safetensors.numpy`` (tensors only, never pickle) and checked
against the architecture in ``model.json`` exactly as ``load_state_dict(strict=True)`` would.

Training still builds the torch network (:func:`gitml.models.torch_mlp.build_network`) from
the same :func:`layer_plan`, so the two cannot disagree on the layout; a test compares their
probabilities for every activation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BATCH_NORM_EPS = 1e-5  # torch.nn.BatchNorm1d's default, which build_network keeps


def layer_plan(hidden_sizes: list[int], activation: str, dropout: float,
               batch_norm: bool) -> list[tuple[str, int]]:
    """The network's layers in order, as (kind, width); a Linear's width is its output size.

    Kinds: ``linear``, ``batch_norm``, ``activation``, ``dropout``; the last Linear's width is
    0 here and means "one output per class".
    """
    plan: list[tuple[str, int]] = []
    for size in hidden_sizes:
        plan.append(("linear", size))
        if batch_norm:
            plan.append(("batch_norm", size))
        plan.append(("activation", size))
        if dropout > 0:
            plan.append(("dropout", size))
    plan.append(("linear", 0))
    return plan


def expected_shapes(arch: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every tensor ``load_state_dict(strict=True)`` would require, with its shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    width = int(arch["n_features"])
    plan = layer_plan(list(arch["hidden_sizes"]), str(arch["activation"]), float(arch["dropout"]),
                      bool(arch["batch_norm"]))
    for index, (kind, size) in enumerate(plan):
        if kind == "linear":
            out = size or int(arch["n_classes"])
            shapes[f"{index}.weight"], shapes[f"{index}.bias"] = (out, width), (out,)
            width = out
        elif kind == "batch_norm":
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{index}.{name}"] = (size,)
            shapes[f"{index}.num_batches_tracked"] = ()
    return shapes


def _activation(name: str) -> Any:
    if name == "relu":
        return lambda x: np.maximum(x, 0, out=x)
    if name == "tanh":
        return lambda x: np.tanh(x, out=x)
    if name == "silu":
        return lambda x: x / (1 + np.exp(-x))
    if name == "gelu":  # torch's default GELU is the exact one, with erf
        from scipy.special import erf

        return lambda x: (0.5 * x * (1 + erf(x / np.float32(np.sqrt(2))))).astype(np.float32)
    raise ValueError(f"unknown activation {name!r}")


class MLPInference:
    """The forward pass of a saved torch_mlp network, in float32 NumPy, batch by batch."""

    def __init__(self, arch: dict[str, Any], state: dict[str, np.ndarray]):
        act = _activation(str(arch["activation"]))
        plan = layer_plan(list(arch["hidden_sizes"]), str(arch["activation"]), float(arch["dropout"]),
                          bool(arch["batch_norm"]))
        self.steps: list[Any] = []
        for index, (kind, _) in enumerate(plan):
            if kind == "linear":  # x @ W.T + b, with W.T stored contiguous once
                weight_t = np.ascontiguousarray(state[f"{index}.weight"].T, dtype=np.float32)
                self.steps.append(("affine", weight_t, state[f"{index}.bias"].astype(np.float32)))
            elif kind == "batch_norm":  # eval mode: a per-column scale and shift
                scale = state[f"{index}.weight"] / np.sqrt(state[f"{index}.running_var"] + BATCH_NORM_EPS)
                shift = state[f"{index}.bias"] - state[f"{index}.running_mean"] * scale
                self.steps.append(("scale", scale.astype(np.float32), shift.astype(np.float32)))
            elif kind == "activation":
                self.steps.append(("apply", act, None))

    def predict_proba(self, X: Any) -> np.ndarray:
        x = self.forward(X)
        x = x - x.max(axis=1, keepdims=True)
        np.exp(x, out=x)
        return x / x.sum(axis=1, keepdims=True)

    def forward(self, X: Any) -> np.ndarray:
        """The network's raw outputs (logits; a regression's one column)."""
        x = np.asarray(X, dtype=np.float32)
        for kind, a, b in self.steps:
            if kind == "affine":
                x = x @ a + b
            elif kind == "scale":
                x = x * a + b
            else:
                x = a(x)
        return x
