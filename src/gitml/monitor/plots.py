"""The drift report's PNG plots (``gitml drift check --plots``): drawn only when asked, since
matplotlib costs seconds.

    distributions.png   reference vs current for the `drift.top_features` most drifted features
    p_values.png        every feature's p-value against the cutoff
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.monitor.report import p_text
from gitml.utils.atomic import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from gitml.monitor.detectors import DriftResult

REFERENCE_COLOR, CURRENT_COLOR, DRIFT_COLOR, OK_COLOR = "#4C72B0", "#DD8452", "#C44E52", "#8C8C8C"
P_FLOOR = 1e-30


def plot_distributions(path: Path, features: list[Any], reference: pd.DataFrame,
                       current: pd.DataFrame) -> Path:
    """One panel per feature: overlaid histograms (numeric) or level shares (categorical)."""
    import numpy as np

    plt = _pyplot()
    cols = min(3, len(features))
    rows = math.ceil(len(features) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    for ax, feature in zip(axes.flat, features, strict=False):
        ref, cur = reference[feature.name], current[feature.name]
        if feature.test == "chi2" or ref.dtype == object:
            _bars(ax, ref, cur)
        else:
            ref_v, cur_v = _finite(ref), _finite(cur)
            both = np.concatenate([ref_v, cur_v])
            low, high = np.quantile(both, [0.005, 0.995]) if len(both) else (0.0, 1.0)
            bins = np.linspace(low, high if high > low else low + 1.0, 31)
            # The central 99% sets the range, so one outlier cannot flatten the picture.
            ax.hist(ref_v, bins=bins, density=True, alpha=0.55, color=REFERENCE_COLOR,
                    label=f"reference (n={len(ref)})")
            ax.hist(cur_v, bins=bins, density=True, histtype="step", linewidth=2,
                    color=CURRENT_COLOR, label=f"current (n={len(cur)})")
            ax.set_ylabel("density")
        mark = "DRIFT" if feature.drifted else "no drift"
        ax.set_title(f"{feature.name}: {feature.test} p={p_text(feature.p_value)} ({mark})", fontsize=10,
                     color=DRIFT_COLOR if feature.drifted else "black")
    for ax in list(axes.flat)[len(features):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle("Reference vs current, most drifted features first", fontsize=12)
    fig.legend(handles, labels, loc="upper right", ncols=2, fontsize=9, frameon=False)
    return _save(fig, path)


def _finite(values: pd.Series) -> Any:
    import numpy as np

    numbers = values.astype(float).to_numpy()
    return numbers[np.isfinite(numbers)]  # an infinity would stretch the bins to nothing


def _bars(ax: Any, ref: pd.Series, cur: pd.Series) -> None:
    import numpy as np

    ref_share = ref.astype(str).value_counts(normalize=True)
    cur_share = cur.astype(str).value_counts(normalize=True)
    levels = sorted(set(ref_share.index) | set(cur_share.index))
    x = np.arange(len(levels))
    ax.bar(x - 0.2, [ref_share.get(v, 0.0) for v in levels], width=0.4, color=REFERENCE_COLOR,
           label=f"reference (n={len(ref)})")
    ax.bar(x + 0.2, [cur_share.get(v, 0.0) for v in levels], width=0.4, color=CURRENT_COLOR,
           label=f"current (n={len(cur)})")
    ax.set_xticks(x, levels, rotation=30 if len(levels) > 6 else 0)
    ax.set_ylabel("share of rows")


def plot_p_values(path: Path, result: DriftResult, predictions: DriftResult | None) -> Path:
    """Horizontal bars of -log10(p) per feature with the cutoff as a line (longer = more drift)."""
    import numpy as np

    plt = _pyplot()
    tests = list(result.features)
    if predictions is not None:
        tests += predictions.features
    tests = sorted(tests, key=lambda f: f.p_value)[:40]
    # p-values come from float32 and can be 0; bars stop at P_FLOOR so the rest stays readable.
    scores = [-math.log10(max(f.p_value, P_FLOOR)) for f in tests]
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.32 * len(tests)))
    y = np.arange(len(tests))[::-1]
    ax.barh(y, scores, color=[DRIFT_COLOR if f.drifted else OK_COLOR for f in tests])
    for row, score, test in zip(y, scores, tests, strict=True):
        if test.p_value < P_FLOOR:
            ax.text(score, row, f" p<{P_FLOOR:.0e}", va="center", fontsize=8)
    names = [f"{f.name} (prediction)" if f.name.startswith("proba_") else f.name for f in tests]
    ax.set_yticks(y, names, fontsize=9)
    cutoffs = sorted({f.threshold for f in tests})
    if len(cutoffs) == 1:
        ax.axvline(-math.log10(cutoffs[0]), color="black", linestyle="--",
                   label=f"cutoff p = {p_text(cutoffs[0])}")
    else:  # FDR without a discovery (one critical value per rank), or predictions' own cutoff
        ax.plot([-math.log10(f.threshold) for f in tests], y, "k|", markersize=14, label="cutoff of each test")
    ax.set_xlabel("-log10(p-value)   (right of the cutoff = drift)")
    title = "Univariate p-values" + (f" (diagnostic; verdict by {result.detector})" if result.diagnostic else "")
    ax.set_title(title, fontsize=11)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: CI and servers
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
