"""Deterministic, seeded, stratified train / validation / test split."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitml.config.schema import SplitConfig
from gitml.errors import GitmlError

if TYPE_CHECKING:
    import pandas as pd


def split_frame(frame: pd.DataFrame, label: str, cfg: SplitConfig) -> dict[str, pd.DataFrame]:
    """Split into ``train``, ``val`` and ``test``; ``val_size`` is a share of what is left after test.

    Stratifies on the label when ``cfg.stratify`` and every class has at least two rows
    per split it must reach; otherwise says why it cannot.
    """
    from sklearn.model_selection import train_test_split

    stratify = frame[label] if cfg.stratify else None
    if stratify is not None and stratify.value_counts().min() < 3:
        rare = stratify.value_counts().idxmin()
        raise GitmlError(
            f"Cannot stratify on '{label}': class {rare!r} has fewer than 3 rows. "
            "Add data or set data.split.stratify=false."
        )
    try:
        rest, test = train_test_split(
            frame, test_size=cfg.test_size, random_state=cfg.seed, stratify=stratify
        )
        train, val = train_test_split(
            rest, test_size=cfg.val_size, random_state=cfg.seed,
            stratify=rest[label] if cfg.stratify else None,
        )
    except ValueError as exc:
        raise GitmlError(f"Cannot split {len(frame)} rows with data.split={cfg}: {exc}") from exc
    return {"train": train.reset_index(drop=True), "val": val.reset_index(drop=True),
            "test": test.reset_index(drop=True)}
