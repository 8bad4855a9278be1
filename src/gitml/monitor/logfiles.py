"""The log's Parquet files, one at a time: found newest first, their footers, their rows.

:mod:`gitml.monitor.logs` builds windows from these; they read nothing they need not.
A footer holds the row count and, per row group, the ``ts`` column's min and max (the
server writes those statistics, docs/logs.md), so a file's newest ``ts`` is known before
its rows are read: on a log of small files, reading one costs ~3 ms and its footer ~0.5.
A log on object storage (``s3://bucket/prefix``, docs/storage.md) is listed in one go and
its files opened through fsspec, which reads the footer and the rows as byte ranges.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.errors import RequestLogError
from gitml.utils.storage import Location, filesystem, join, list_files

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

Layout = tuple[tuple[str, str], ...]  # (column name, Arrow type) of each column of a file
_HOUR_DIR = re.compile(r"date=(\d{4}-\d{2}-\d{2})/hour=(\d{1,2})$")


def hour_folders(root: Location) -> list[tuple[Any, list[Any]]]:
    """``(end of hour, part files)`` per hour folder, newest first.

    Folders whose names do not parse as ``date=.../hour=...`` get ``None`` and are read
    last (they cannot be placed in time). Files starting with a dot are temporary. The
    files are Paths, or URLs for a log on object storage.
    """
    import pandas as pd

    dated, undated = [], []
    for relative, names in _folders(root):
        names = sorted((n for n in names if n.endswith(".parquet") and not n.startswith(".")), reverse=True)
        if not names:
            continue
        files = [join(root, relative, name) for name in names]  # part-<unix_ns>-...: newest first
        match = _HOUR_DIR.search(relative)
        if match:
            start = pd.Timestamp(f"{match.group(1)} {int(match.group(2)):02d}:00", tz="UTC")
            dated.append((start + pd.Timedelta(hours=1), files))
        else:
            undated.append((None, files))
    dated.sort(key=lambda item: item[0], reverse=True)
    return dated + undated


def _folders(root: Location) -> list[tuple[str, list[str]]]:
    """``(folder below root, file names in it)`` for every folder of the log."""
    if isinstance(root, Path):
        if not root.is_dir():
            return []
        # os.walk, not Path.rglob: a day's log is thousands of files, and rglob's per-file
        # matching and grouping by parent Path took 180 ms where this takes 100.
        return [(Path(folder).relative_to(root).as_posix(), names)
                for folder, _, names in os.walk(root, followlinks=True)]
    try:
        listing = list_files(root)  # one listing of the whole prefix, 1000 keys a request
    except Exception as exc:  # the client raises several types for an unreachable store
        raise RequestLogError(f"Cannot list the log at {root}: {type(exc).__name__}: {exc}") from exc
    folders: dict[str, list[str]] = {}
    for name in listing:
        folder, _, file = name.rpartition("/")
        folders.setdefault(folder, []).append(file)
    return list(folders.items())


def _open(path: Location) -> Any:
    """A local path as it is, a URL as a file object (fsspec reads the byte ranges asked for)."""
    if isinstance(path, Path):
        return path
    fs, key = filesystem(path)
    return fs.open(key, "rb")


def read_groups(path: Location, wanted: Callable[[pd.Timestamp], bool]) -> Iterator[tuple[pa.Table, Layout]]:
    """The file's row groups, last written first, each read only if ``wanted(its newest ts)``.

    ``wanted`` is asked just before each group is read, so a caller that counts what it has
    read stops a large file at the groups the window needs: memory follows the window, not
    the file (a compacted hour of 500,000 rows, for a window of 5,000). A file whose footer
    cannot tell (no ``ts`` statistics) is read whole, in one piece.
    """
    handle, stamps = open_groups(path)
    if stamps is None:
        yield read_file(path, handle)
        return
    for group in reversed(range(len(stamps))):
        if wanted(stamps[group]):
            yield read_file(path, handle, [group])


def open_groups(path: Location) -> tuple[Any, list[pd.Timestamp] | None]:
    """The file opened (its footer read) and the newest ``ts`` of each row group, in file order,
    by the statistics: None when they cannot tell (none, or ``ts`` is not a timestamp column)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(_open(path))
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise RequestLogError(f"Cannot read log file '{path}': {exc}") from exc
    schema, meta = handle.schema_arrow, handle.metadata
    if "ts" not in schema.names or not pa.types.is_timestamp(schema.field("ts").type) or not meta.num_row_groups:
        return handle, None
    stamps = []
    for group in range(meta.num_row_groups):
        columns = meta.row_group(group)
        stats = next((columns.column(i).statistics for i in range(columns.num_columns)
                      if columns.column(i).path_in_schema == "ts"), None)
        if stats is None or not stats.has_min_max:
            return handle, None
        last = pd.Timestamp(stats.max)
        stamps.append(last.tz_localize("UTC") if last.tzinfo is None else last.tz_convert("UTC"))
    return handle, stamps


def read_file(path: Location, handle: Any = None, groups: list[int] | None = None) -> tuple[pa.Table, Layout]:
    """The file's rows as stored (``groups``: those row groups only) and its column layout:
    ``(name, Arrow type)`` per column. ``handle``: the file as :func:`open_groups` opened it.
    :func:`to_frame` makes the frame."""
    import pyarrow.parquet as pq

    try:
        # ParquetFile, not read_table: the file's columns only (no date/hour from its folder)
        # and no dataset set-up, which cost 4 ms a file against 1.5.
        # One thread: a log file is a few dozen rows, and the pool's overhead exceeds the decoding.
        handle = handle or pq.ParquetFile(_open(path))
        table = handle.read(use_threads=False) if groups is None else handle.read_row_groups(groups, use_threads=False)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise RequestLogError(f"Cannot read log file '{path}': {exc}") from exc
    if "ts" not in table.column_names:
        raise RequestLogError(f"Log file '{path}' has no 'ts' column (docs/logs.md).")
    index = _index_columns(table)
    return table, tuple((str(f.name), str(f.type)) for f in table.schema if f.name not in index)


def to_frame(tables: list[pa.Table], *, ts: bool = True) -> pd.DataFrame:
    """The rows of ``tables``, in order, as one frame (``ts`` in UTC, a fresh 0..n-1 index;
    ``ts=False``: tables without it).

    Why one conversion: turning each small file into pandas costs ~3 ms and concatenating
    the frames more; files of one layout (names and types; a column's nullability may
    differ) are joined as Arrow and converted once. Files of different layouts are
    converted one by one and joined by pandas, which unifies what the files disagree on.
    """
    import pandas as pd
    import pyarrow as pa

    utc = _utc_ts if ts else (lambda frame: frame)
    layouts = {tuple((f.name, f.type) for f in t.schema) for t in tables}
    if len(layouts) == 1 and not any(_index_columns(t) for t in tables):
        return utc(pa.concat_tables(tables, promote_options="default").to_pandas())
    return pd.concat([utc(t.to_pandas()) for t in tables], ignore_index=True)


def stamps_ns(table: pa.Table) -> np.ndarray:
    """The table's ``ts`` as int64 nanoseconds since the epoch (UTC; a naive time is UTC)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    column = table.column("ts")
    if pa.types.is_timestamp(column.type):  # Arrow stores the UTC instant whatever the zone
        return np.asarray(column.to_numpy(), dtype="datetime64[ns]").view("int64")
    return pd.to_datetime(column.to_pandas(), utc=True).to_numpy(dtype="datetime64[ns]").view("int64")


def _utc_ts(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(frame["ts"].dtype, pd.DatetimeTZDtype) or str(frame["ts"].dt.tz) != "UTC":
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def _index_columns(table: pa.Table) -> set[str]:
    """Columns a pandas writer stored its index in: to_pandas makes them the index, not columns."""
    return {c for c in (table.schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}


class Newest:
    """The ``rows``-th newest distinct row among those read so far (keys: ``(request_id, row)``):
    a folder or file whose rows are all older holds none of the last ``rows`` rows."""

    def __init__(self, rows: int | None) -> None:
        self.rows = None if rows is None else max(int(rows), 1)
        self.stamps: list[np.ndarray] = []  # ts as int64 ns, one array per file read
        self.keys: list[pa.Table] = []
        self.count = 0
        self._raw: int | None = None
        self._distinct: int | None = None

    def add(self, table: pa.Table, keys: list[str]) -> None:
        """Count the rows of one file read (``keys``: the columns that identify a row)."""
        if self.rows is not None:
            self.stamps.append(stamps_ns(table))
            self.keys.append(table.select(keys).replace_schema_metadata(None))
            self.count += table.num_rows
            self._raw = self._distinct = None

    def at_least(self, moment: pd.Timestamp) -> bool:
        """True when ``rows`` distinct rows read so far are stamped at or after ``moment``."""
        threshold = self._threshold(moment.value)
        return threshold is not None and threshold >= moment.value

    def beyond(self, moment: pd.Timestamp) -> bool:
        """True when ``rows`` distinct rows read so far are stamped after ``moment``."""
        threshold = self._threshold(moment.value)
        return threshold is not None and threshold > moment.value

    def _threshold(self, moment: int) -> int | None:
        import numpy as np

        if self.rows is None or self.count < self.rows:
            return None
        if self._raw is None:
            stamps = np.concatenate(self.stamps)
            self._raw = int(np.partition(stamps, len(stamps) - self.rows)[len(stamps) - self.rows])
        if self._raw < moment:
            return None  # the usual answer, cheaply: repeats could only lower the threshold
        if self._distinct is None:  # a row counts once, at its newest copy
            frame = to_frame(self.keys, ts=False)
            frame["ts"] = np.concatenate(self.stamps)
            newest = frame.groupby(list(frame.columns[:-1]), sort=False, observed=True)["ts"].max().to_numpy()
            self._distinct = int(np.sort(newest)[-self.rows]) if len(newest) >= self.rows else -1
        return None if self._distinct < 0 else self._distinct
