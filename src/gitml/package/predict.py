"""Batch prediction over CSV or Parquet files, streamed in chunks, written atomically."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from gitml.errors import GitmlError, InputValidationError
from gitml.package.bundle import Bundle
from gitml.utils.atomic import atomic_path

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def read_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    if suffix == ".csv":
        import pandas as pd

        yield from pd.read_csv(path, chunksize=chunk_rows)
    elif suffix in (".parquet", ".pq"):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    else:
        raise GitmlError(f"Cannot read '{path}': expected a .csv or .parquet file.")


def predict_file(bundle: Bundle, source: str | Path, out: str | Path, chunk_rows: int = 50_000,
                 keep_columns: bool = False) -> int:
    """Predict every row of ``source`` into Parquet ``out``; returns the number of rows.

    Rows are validated against the bundle's signature chunk by chunk; the first invalid
    chunk stops the run with the problems (row numbers counted from the file's start) and
    ``out`` is not written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = Path(source)
    if not source.is_file():
        raise GitmlError(f"Input file '{source}' does not exist.")
    rows = 0
    with atomic_path(out) as tmp:
        writer = None
        try:
            for chunk in read_chunks(source, chunk_rows):
                chunk.index = range(rows, rows + len(chunk))
                try:
                    result = bundle.predict(chunk)
                except InputValidationError as exc:
                    raise InputValidationError(exc.problems) from None
                if keep_columns:
                    result = chunk.join(result)
                table = pa.Table.from_pandas(result, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                rows += len(chunk)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise GitmlError(f"Input file '{source}' has no rows.")
    log.info("predicted %d rows with %s %s -> %s", rows, bundle.metadata.get("name"), bundle.version, out)
    return rows
