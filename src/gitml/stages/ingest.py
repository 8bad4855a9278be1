"""``gitml ingest``: write the raw snapshot ``data/raw/`` from the configured source."""

from __future__ import annotations

import logging
from pathlib import Path

from gitml.config.schema import DataConfig
from gitml.data.chunks import FrameWriter, use_streaming_allocator
from gitml.data.sources import iter_source
from gitml.utils.atomic import atomic_path

log = logging.getLogger(__name__)


def ingest(data: DataConfig, out_dir: str | Path, root: str | Path = ".") -> Path:
    """Stream ``data.source`` into ``out_dir/data.parquet`` (atomically, whole folder).

    The file is written ``data.chunk_rows`` rows a row group, so a source larger than
    memory is never held whole; a source of fewer rows is one row group, the same bytes
    as writing the frame at once.
    """
    use_streaming_allocator()
    columns = 0
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        writer = FrameWriter(tmp / "data.parquet")
        try:
            for frame in iter_source(data.source, data.target, Path(root), data.chunk_rows):
                writer.write(frame)
                columns = frame.shape[1] - 1
        finally:
            writer.close()
    log.info(
        "ingested %d rows x %d columns from %s <data.source.kind=%s> <data.chunk_rows=%d>",
        writer.rows, columns, data.name, data.source.kind.name, data.chunk_rows,
    )
    return Path(out_dir)
