"""Reading and writing snapshot folders: every ``*.parquet`` file in a folder, in name order."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gitml.errors import DataSourceError

if TYPE_CHECKING:
    import pandas as pd


def snapshot_files(folder: str | Path) -> list[Path]:
    """Parquet files of a snapshot folder (an absent folder holds none)."""
    folder = Path(folder)
    if not folder.exists():
        return []
    if not folder.is_dir():
        raise DataSourceError(f"Snapshot path '{folder}' is not a folder.")
    return sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith("."))


def read_parquet(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception as exc:
        raise DataSourceError(f"Cannot read snapshot file '{path}': {exc}") from exc


def read_snapshots(*folders: str | Path) -> pd.DataFrame:
    """Concatenate every snapshot file of ``folders`` (raw first, then production batches)."""
    import pandas as pd

    frames = [read_parquet(p) for folder in folders for p in snapshot_files(folder)]
    if not frames:
        raise DataSourceError(f"No Parquet snapshot found in {', '.join(map(str, folders))}.")
    return pd.concat(frames, ignore_index=True)
