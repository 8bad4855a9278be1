"""Deterministic, seeded, stratified train / validation / test split.

Written on NumPy rather than scikit-learn's ``train_test_split``: importing scikit-learn
(and the scipy.stats it pulls in) costs the prepare stage more than the split itself.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gitml.config.schema import SplitConfig
from gitml.errors import GitmlError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


STRATUM = "__gitml_stratum__"
QUANTILE_BINS = 5  # a regression label is stratified on its quintiles


TRAIN, VAL, TEST = 0, 1, 2
SPLITS = {"train": TRAIN, "val": VAL, "test": TEST}


def split_frame(frame: pd.DataFrame, label: str, cfg: SplitConfig, regression: bool = False) -> dict[str, pd.DataFrame]:
    """Split into ``train``, ``val`` and ``test``; ``val_size`` is a share of what is left after test.

    Stratifies on the label when ``cfg.stratify`` (each class keeps its share in every
    split, to the row), refusing a class with fewer than 3 rows; rows keep their order. A
    regression label is stratified on its quintiles, so every split sees its whole range.
    The rows each split takes are :func:`split_codes` of the label column alone.
    """
    codes = split_codes(frame[label], label, cfg, regression)
    return {name: frame[codes == code].reset_index(drop=True) for name, code in SPLITS.items()}


def split_codes(labels: pd.Series, label: str, cfg: SplitConfig, regression: bool = False) -> np.ndarray:
    """The split of each row (``TRAIN``, ``VAL`` or ``TEST``, int8), from the label column alone.

    Only the label column decides, so a data set larger than memory is split by reading
    that one column (``gitml.data.chunks``), and its rows then go to their splits chunk by
    chunk: the same rows as :func:`split_frame` on the whole frame.
    """
    import numpy as np
    import pandas as pd

    labels = labels.reset_index(drop=True)
    if regression and cfg.stratify and len(labels) < 3 * QUANTILE_BINS:
        raise GitmlError(f"Cannot stratify {len(labels)} rows on the quintiles of '{label}': each needs 3 rows. "
                         "Add data or set data.split.stratify=false.")
    if regression:
        labels = pd.Series(pd.qcut(labels.rank(method="first"), QUANTILE_BINS, labels=False), name=STRATUM)
        label = STRATUM
    if cfg.stratify and labels.value_counts().min() < 3:
        rare = labels.value_counts().idxmin()
        raise GitmlError(
            f"Cannot stratify on '{label}': class {rare!r} has fewer than 3 rows. "
            "Add data or set data.split.stratify=false."
        )
    rng = np.random.default_rng(cfg.seed)
    is_test = pick(labels if cfg.stratify else None, len(labels), cfg.test_size, rng)
    rest = labels[~is_test]
    if min(int(is_test.sum()), len(rest)) == 0:
        raise GitmlError(f"Cannot split {len(labels)} rows with data.split.test_size={cfg.test_size}: "
                         "a split would be empty.")
    is_val = pick(rest if cfg.stratify else None, len(rest), cfg.val_size, rng)
    if min(len(rest) - int(is_val.sum()), int(is_val.sum())) == 0:
        raise GitmlError(f"Cannot split {len(rest)} rows with data.split.val_size={cfg.val_size}: "
                         "a split would be empty.")
    codes = np.full(len(labels), TRAIN, dtype="int8")
    codes[is_test] = TEST
    codes[np.flatnonzero(~is_test)[is_val]] = VAL
    return codes


def pick(labels: pd.Series | None, n: int, share: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask choosing ``ceil(share * n)`` of ``n`` rows at random, per class when ``labels``.

    Each class gets its exact share rounded down, and the rows left over go to the classes
    with the largest remainders (Hamilton's method), so the total is always exact.
    """
    import numpy as np
    import pandas as pd

    wanted = math.ceil(share * n)
    mask = np.zeros(n, dtype=bool)
    if labels is None:
        mask[rng.permutation(n)[:wanted]] = True
        return mask
    codes = pd.factorize(labels, sort=True)[0]
    counts = np.bincount(codes)
    exact = counts * wanted / n
    quota = np.floor(exact).astype(int)
    leftover = wanted - int(quota.sum())
    quota[np.argsort(-(exact - quota), kind="stable")[:leftover]] += 1
    for code, take in enumerate(quota):
        rows = np.flatnonzero(codes == code)
        mask[rng.permutation(rows)[:take]] = True
    return mask
