"""gitml's trainer vs a minimal hand-written PyTorch loop vs DataLoader(TensorDataset).

Same synthetic data, same network, same optimizer, batch size and epochs. Each variant
runs ``--repeats`` times, interleaved; the best (least disturbed) and the median time are
reported with their ratios to the hand-written loop. gitml runs with what it always does in the pipeline (per-epoch atomic
checkpoints, loss tracking, early-stopping bookkeeping) and no validation split, since
the baselines have none; a second gitml row adds a validation split for reference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gitml.config.schema import EarlyStoppingConfig, TrainerConfig
from gitml.models.torch_mlp import build_network
from gitml.train.loop import Trainer


def make_data(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)).astype("float32")
    w = rng.normal(size=features)
    y = ((X @ w + rng.normal(scale=0.5, size=rows)) > 0).astype("int64")
    return X, y


def network(features: int) -> nn.Module:
    torch.manual_seed(0)
    return build_network(features, 2, [128, 64], "relu", 0.0, False)


def hand_loop(X, y, epochs: int, batch: int, lr: float) -> None:
    net = network(X.shape[1])
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(X_t))
        for start in range(0, len(X_t), batch):
            index = order[start : start + batch]
            loss = nn.functional.cross_entropy(net(X_t[index]), y_t[index])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def dataloader_loop(X, y, epochs: int, batch: int, lr: float) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    net = network(X.shape[1])
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), batch_size=batch, shuffle=True)
    net.train()
    for _ in range(epochs):
        for xb, yb in loader:
            loss = nn.functional.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def gitml_trainer(X, y, epochs: int, batch: int, lr: float, val: float = 0.0) -> None:
    cfg = TrainerConfig(device="cpu", epochs=epochs, batch_size=batch,
                        early_stopping=EarlyStoppingConfig(enabled=False))
    n_val = int(len(X) * val)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(replace(cfg), checkpoint_dir=Path(tmp) / "ckpt", progress=False)
        if n_val:
            trainer.fit(network(X.shape[1]), X[n_val:], y[n_val:], X[:n_val], y[:n_val],
                        optimizer_factory=partial(torch.optim.AdamW, lr=lr))
        else:
            trainer.fit(network(X.shape[1]), X, y, optimizer_factory=partial(torch.optim.AdamW, lr=lr))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    X, y = make_data(args.rows, args.features)
    common = {"epochs": args.epochs, "batch": args.batch_size, "lr": 1e-3}
    variants = {
        "hand-written loop (baseline)": partial(hand_loop, X, y, **common),
        "DataLoader(TensorDataset)": partial(dataloader_loop, X, y, **common),
        "gitml Trainer": partial(gitml_trainer, X, y, **common),
        "gitml Trainer + 10% val split": partial(gitml_trainer, X, y, **common, val=0.1),
    }
    hand_loop(X[:2048], y[:2048], 1, args.batch_size, 1e-3)  # warm-up: allocator, kernels
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)

    best_base = min(times["hand-written loop (baseline)"])
    median_base = statistics.median(times["hand-written loop (baseline)"])
    print(f"\ntrainer benchmark: {args.rows} rows x {args.features} features, {args.epochs} epochs, "
          f"batch {args.batch_size}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.repeats} interleaved repeats\n")
    print(f"| {'variant':<32} | {'best s':>7} | {'rows/s (best)':>13} | {'ratio (best)':>12} | {'ratio (median)':>14} |")
    print(f"|{'-' * 34}|{'-' * 9}|{'-' * 15}|{'-' * 14}|{'-' * 16}|")
    for name, samples in times.items():
        best = min(samples)
        rows_per_s = args.rows * args.epochs / best
        print(f"| {name:<32} | {best:>7.3f} | {rows_per_s:>13,.0f} | {best / best_base:>11.3f}x "
              f"| {statistics.median(samples) / median_base:>13.3f}x |")

if __name__ == "__main__":
    main()
