"""Snapshot folders read and written in chunks: data larger than memory.

A snapshot is one or more Parquet files read as if concatenated (raw first, then
production batches). Stages that work row by row (ingest, validation checks, prepare's
outputs, batch prediction) take it ``data.chunk_rows`` rows at a time, Parquet batch by
batch; the few statistics that need a whole column (the split, which reads the label
column alone, a median, an inferred contract's ranges and levels) read that one column:
Parquet is columnar, so a column costs its own bytes, and memory holds one column, not
rows x columns.

Each chunk gets the column types the whole file would get from ``pandas.read_parquet``
(an int column with a null anywhere is float64 in every chunk, not int64 in the chunks
without one), so the outputs and checks do not depend on where a chunk starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.errors import DataSourceError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

DEFAULT_CHUNK_ROWS = 100_000  # data.chunk_rows: 100k x 50 float64 columns is 40 MB a chunk


def use_streaming_allocator() -> None:
    """Make this process's Arrow allocations come from jemalloc, handing freed pages back at once.

    Memory that a chunk freed must be reusable by the next, or a stream's peak grows with
    the rows. Reading 1M rows in ten 100k-row batches into pandas, resident memory after
    each batch rose 332 -> 504 MiB with pyarrow's default allocator (mimalloc) and
    335 -> 567 MiB with the system's, and stayed at 332-397 MiB with jemalloc purging at
    once. Called by the streaming stages (a process-wide setting: never at import); where
    pyarrow was built without jemalloc, the system allocator is used.
    """
    import pyarrow as pa

    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(0)
    except NotImplementedError:  # a pyarrow build without jemalloc
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)


def null_counts(path: Path) -> dict[str, int]:
    """Nulls per column from the footer's statistics (a column without them is read alone)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path, pre_buffer=False)
    meta, counts = parquet.metadata, {}
    for j, name in enumerate(parquet.schema_arrow.names):
        total = 0
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(j).statistics
            if stats is None or not stats.has_null_count:
                column = parquet.read(columns=[name], use_threads=False).column(0)
                total = int(pc.sum(pc.is_null(column)).as_py() or 0)
                break
            total += stats.null_count
        counts[name] = total
    return counts


def file_dtypes(path: Path) -> dict[str, Any]:
    """The pandas dtype of each column as ``pandas.read_parquet(path)`` gives it, without reading rows."""
    import numpy as np
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    dtypes = dict(schema.empty_table().to_pandas().dtypes.items())
    nulls = null_counts(path)
    for name, dtype in dtypes.items():
        if nulls.get(name) and isinstance(dtype, np.dtype) and dtype.kind in "iub":
            dtypes[name] = np.dtype("float64") if dtype.kind in "iu" else np.dtype("object")
    return {str(k): v for k, v in dtypes.items()}


def common_dtype(dtypes: list[Any], absent: bool = False) -> Any:
    """The dtype ``pandas.concat`` gives a column of these dtypes (numbers widen, mixed kinds are objects).

    ``absent``: some file lacks the column, so its rows are null there: integers become
    float64 and booleans objects, as in ``pandas.concat`` (validation then reports them).
    """
    import numpy as np

    first = dtypes[0]
    if all(d == first for d in dtypes):
        common = first
    elif all(isinstance(d, np.dtype) and d.kind in "iuf" for d in dtypes):
        common = np.result_type(*dtypes)
    else:
        common = np.dtype("object")
    if absent and isinstance(common, np.dtype) and common.kind in "iub":
        return np.dtype("float64") if common.kind in "iu" else np.dtype("object")
    return common


class Snapshot:
    """The Parquet files of one or more snapshot folders, read as one table without loading it."""

    def __init__(self, files: list[Path], in_memory_rows: int = 0):
        """``in_memory_rows``: a snapshot of at most that many rows is read once, whole, for :meth:`column`."""
        import pyarrow.parquet as pq

        if not files:
            raise DataSourceError("No Parquet snapshot found.")
        self.files, self.in_memory_rows = files, in_memory_rows
        self._frame: pd.DataFrame | None = None
        try:
            self.rows_per_file = [pq.read_metadata(p).num_rows for p in files]
            per_file = [file_dtypes(p) for p in files]
            schemas = [pq.read_schema(p) for p in files]
        except Exception as exc:
            raise DataSourceError(f"Cannot read snapshot files {', '.join(map(str, files))}: {exc}") from exc
        self.columns: list[str] = []
        for dtypes in per_file:
            self.columns += [c for c in dtypes if c not in self.columns]
        self.dtypes = {c: common_dtype([d[c] for d in per_file if c in d], absent=any(c not in d for d in per_file))
                       for c in self.columns}
        # Arrow types for the writer: a chunk whose text column is all null still writes it as text.
        self.arrow_types: dict[str, pa.DataType] = {}
        for schema in reversed(schemas):
            self.arrow_types |= {f.name: f.type for f in schema}

    @property
    def rows(self) -> int:
        return sum(self.rows_per_file)

    def chunks(self, chunk_rows: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """Frames of at most ``chunk_rows`` rows, in file order, typed as the whole snapshot is."""
        import pyarrow.parquet as pq

        wanted = columns or self.columns
        for path in self.files:
            # One thread, no pre-buffering: reading a 1M-row file of 250k-row groups peaked at
            # 770 MiB RSS with pyarrow's defaults, 512 MiB so, at the same speed on 2 cores.
            parquet = pq.ParquetFile(path, pre_buffer=False)
            present = [c for c in wanted if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=chunk_rows, columns=present, use_threads=False):
                yield self.typed(batch.to_pandas(), wanted)

    def typed(self, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        """``frame`` with ``columns`` in order (absent ones null) and the snapshot's dtypes."""
        if list(frame.columns) != columns:
            frame = frame.reindex(columns=columns)
        changed = {c: self.dtypes[c] for c in columns if frame[c].dtype != self.dtypes[c]}
        return frame.astype(changed) if changed else frame

    def column(self, name: str) -> pd.Series:
        """One column over every file, as it would be in the concatenated frame."""
        import pandas as pd
        import pyarrow.parquet as pq

        if 0 < self.rows <= self.in_memory_rows:  # small: one read, then columns of it
            if self._frame is None:
                chunks = list(self.chunks(self.rows or 1))
                self._frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
            return self._frame[name]

        parts = []
        for path, rows in zip(self.files, self.rows_per_file, strict=True):
            if name in pq.read_schema(path).names:
                # pyarrow's defaults (threads, pre-buffering) took 603 MiB to read the 51 columns
                # of 1M rows one by one; one thread without pre-buffering, 144 MiB.
                table = pq.read_table(path, columns=[name], use_threads=False, pre_buffer=False)
                parts.append(table.column(0).to_pandas())
            else:
                parts.append(pd.Series(float("nan"), index=range(rows), dtype=self.dtypes[name]))  # as concat
        series = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        series.name = name
        return series.astype(self.dtypes[name]) if series.dtype != self.dtypes[name] else series


class FrameWriter:
    """One Parquet file written a frame (a row group) at a time; opened on the first frame.

    A later frame whose Arrow types differ (an all-null text column reads as null; pandas
    types each CSV chunk anew) is cast to the file's schema. ``types`` gives the type a
    column that is all null in the first frame is written as. A single frame writes the
    same bytes as ``DataFrame.to_parquet(index=False)``.
    """

    def __init__(self, path: Path, types: dict[str, pa.DataType] | None = None):
        self.path, self.types, self.rows = path, types or {}, 0
        self._writer: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            nulls = [f for f in table.schema if pa.types.is_null(f.type) and f.name in self.types]
            if nulls:
                schema = table.schema
                for field in nulls:
                    schema = schema.set(schema.get_field_index(field.name), field.with_type(self.types[field.name]))
                table = table.cast(schema)
            self._writer = pq.ParquetWriter(self.path, table.schema)
        elif not table.schema.equals(self._writer.schema, check_metadata=False):
            try:
                table = table.cast(self._writer.schema)
            except (ValueError, TypeError, pa.ArrowInvalid) as exc:
                raise DataSourceError(f"Cannot write '{self.path}': a column changed type between chunks "
                                      f"({exc}).") from exc
        self._writer.write_table(table)
        self.rows += len(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
