"""The gate's paired bootstrap vs the plain loop a user would write with scikit-learn.

Both draw the same resamples (row indices) of a binary test split and compute the ROC AUC
difference between two models on each; gitml's kernel counts resampled rows as weights and
scores all resamples in a few vectorised calls (gitml.gate.stats). Each variant runs
``--repeats`` times, interleaved; best and median seconds and the ratio to the loop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gitml.gate.stats import paired_bootstrap


def scores(n: int, separation: float, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p1 = 1 / (1 + np.exp(-(rng.normal(size=n) + separation * y)))
    return np.c_[1 - p1, p1]


def sklearn_loop(y: np.ndarray, new: np.ndarray, old: np.ndarray, resamples: int, seed: int) -> list[float]:
    from sklearn.metrics import roc_auc_score

    rng, out = np.random.default_rng(seed), []
    for _ in range(resamples):
        index = rng.integers(0, len(y), len(y))
        if len(np.unique(y[index])) < 2:
            continue
        out.append(roc_auc_score(y[index], new[index, 1]) - roc_auc_score(y[index], old[index, 1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, args.rows)
    old, new = scores(args.rows, 1.0, y, rng), scores(args.rows, 1.1, y, rng)
    variants = {
        "scikit-learn loop": lambda: sklearn_loop(y, new, old, args.resamples, 0),
        "gitml paired_bootstrap": lambda: paired_bootstrap("roc_auc", y, new, old, args.resamples, 0, 0.05),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, call in variants.items():
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    base = min(times["scikit-learn loop"])
    print(f"paired bootstrap, roc_auc, {args.rows} rows x {args.resamples} resamples, best of {args.repeats}")
    for name, seconds in times.items():
        print(f"  {name:24s} best {min(seconds):7.3f} s  median {statistics.median(seconds):7.3f} s  "
              f"ratio {min(seconds) / base:5.3f}")


if __name__ == "__main__":
    main()
