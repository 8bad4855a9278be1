"""The log's Parquet files, one at a time: found newest first, their footers, their rows.

:mod:`gitml.monitor.logs` builds windows from these; they read nothing they need not.
A footer holds the row count and, per row group, the ``ts`` column's min and max (the
server writes those statistics, docs/logs.md), so a file's newest ``ts`` is known before
its rows are read: on a log of small files, reading one costs ~3 ms and its footer ~0.5.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.errors import RequestLogError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_HOUR_DIR = re.compile(r"date=(\d{4}-\d{2}-\d{2})/hour=(\d{1,2})$")


def hour_folders(root: Path) -> list[tuple[Any, list[Path]]]:
    """``(end of hour, part files)`` per hour folder, newest first.

    Folders whose names do not parse as ``date=.../hour=...`` get ``None`` and are read
    last (they cannot be placed in time). Files starting with a dot are temporary.
    """
    import pandas as pd

    if not root.is_dir():
        return []
    groups: dict[Path, list[Path]] = {}
    for path in root.rglob("*.parquet"):
        if path.name.startswith("."):
            continue
        groups.setdefault(path.parent, []).append(path)
    dated, undated = [], []
    for folder, files in groups.items():
        files.sort(key=lambda p: p.name, reverse=True)  # part-<unix_ns>-...: newest first
        match = _HOUR_DIR.search(folder.relative_to(root).as_posix())
        if match:
            start = pd.Timestamp(f"{match.group(1)} {int(match.group(2)):02d}:00", tz="UTC")
            dated.append((start + pd.Timedelta(hours=1), files))
        else:
            undated.append((None, files))
    dated.sort(key=lambda item: item[0], reverse=True)
    return dated + undated


def open_file(path: Path) -> tuple[Any, pd.Timestamp | None]:
    """The file opened (its footer read) and its newest ``ts`` by the row-group statistics:
    None when they cannot tell (no statistics, or ``ts`` is not a timestamp column)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
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
        stamps.append(stats.max)
    last = pd.Timestamp(max(stamps))
    return handle, last.tz_localize("UTC") if last.tzinfo is None else last.tz_convert("UTC")


def read_file(path: Path, handle: Any = None) -> tuple[pd.DataFrame, tuple[tuple[str, str], ...]]:
    """The file's rows (``ts`` in UTC) and its column layout: ``(name, Arrow type)`` per
    column, as stored. ``handle``: the file as :func:`open_file` opened it."""
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        # ParquetFile, not read_table: the file's columns only (no date/hour from its folder)
        # and no dataset set-up, which cost 4 ms a file against 1.5.
        table = (handle or pq.ParquetFile(path)).read()
        frame = table.to_pandas()
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise RequestLogError(f"Cannot read log file '{path}': {exc}") from exc
    if "ts" not in frame.columns:
        raise RequestLogError(f"Log file '{path}' has no 'ts' column (docs/logs.md).")
    if not isinstance(frame["ts"].dtype, pd.DatetimeTZDtype) or str(frame["ts"].dt.tz) != "UTC":
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)  # (already so, it costs ms per file)
    index = {c for c in (table.schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
    return frame, tuple((str(f.name), str(f.type)) for f in table.schema if f.name not in index)


class Newest:
    """The ``rows``-th newest distinct row among those read so far (keys: ``(request_id, row)``):
    a folder or file whose rows are all older holds none of the last ``rows`` rows."""

    def __init__(self, rows: int | None) -> None:
        self.rows = None if rows is None else max(int(rows), 1)
        self.stamps: list[np.ndarray] = []  # ts as int64 ns, one array per file read
        self.keys: list[pd.DataFrame] = []
        self.count = 0
        self._raw: int | None = None
        self._distinct: int | None = None

    def add(self, ts: pd.Series, keys: pd.DataFrame) -> None:
        if self.rows is not None:
            self.stamps.append(ts.to_numpy(dtype="datetime64[ns]").view("int64"))
            self.keys.append(keys)
            self.count += len(keys)
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
        import pandas as pd

        if self.rows is None or self.count < self.rows:
            return None
        if self._raw is None:
            stamps = np.concatenate(self.stamps)
            self._raw = int(np.partition(stamps, len(stamps) - self.rows)[len(stamps) - self.rows])
        if self._raw < moment:
            return None  # the usual answer, cheaply: repeats could only lower the threshold
        if self._distinct is None:  # a row counts once, at its newest copy
            frame = pd.concat(self.keys, ignore_index=True)
            frame["ts"] = np.concatenate(self.stamps)
            newest = frame.groupby(list(frame.columns[:-1]), sort=False)["ts"].max().to_numpy()
            self._distinct = int(np.sort(newest)[-self.rows]) if len(newest) >= self.rows else -1
        return None if self._distinct < 0 else self._distinct
