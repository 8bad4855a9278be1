"""Example networks for family ``torch_module``, and the shape a custom module must have.

A module for ``model.module._target_`` is any ``torch.nn.Module`` whose constructor takes
``n_features`` and ``n_classes`` (filled in by gitml from the prepared data) plus the other
keys of ``model.module``, and whose ``forward`` maps a float32 batch of shape
``(rows, n_features)`` to logits of shape ``(rows, n_classes)``. Softmax and the loss are
gitml's. Importing this module imports torch: only the torch_module family does.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """LayerNorm -> Linear -> GELU -> Dropout -> Linear, added back to its input."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(),
                                  nn.Dropout(dropout), nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualMLP(nn.Module):
    """An MLP with residual blocks for tabular rows: project, ``blocks`` x residual, classify.

    Example (conf/model/torch_custom.yaml):
        >>> net = ResidualMLP(n_features=30, n_classes=2, width=64, blocks=2, dropout=0.1)
        >>> net(torch.zeros(4, 30)).shape
        torch.Size([4, 2])
    """

    def __init__(self, n_features: int, n_classes: int, width: int = 64, blocks: int = 2, dropout: float = 0.1):
        super().__init__()
        self.project = nn.Linear(n_features, width)
        self.blocks = nn.Sequential(*(ResidualBlock(width, dropout) for _ in range(blocks)))
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.project(x)))
