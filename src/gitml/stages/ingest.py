"""``gitml ingest``: write the raw snapshot ``data/raw/`` from the configured source."""

from __future__ import annotations

import logging
from pathlib import Path

from gitml.config.schema import DataConfig
from gitml.data.sources import load_source
from gitml.utils.atomic import atomic_path

log = logging.getLogger(__name__)


def ingest(data: DataConfig, out_dir: str | Path, root: str | Path = ".") -> Path:
    """Load ``data.source`` and write it as ``out_dir/data.parquet`` (atomically, whole folder)."""
    frame = load_source(data.source, data.target, root=Path(root))
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        frame.to_parquet(tmp / "data.parquet", index=False)
    log.info(
        "ingested %d rows x %d columns from %s <data.source.kind=%s>",
        len(frame), frame.shape[1] - 1, data.name, data.source.kind.name,
    )
    return Path(out_dir)
