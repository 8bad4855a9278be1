"""The drift reader on large files: only the row groups a window needs are read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gitml.monitor.logfiles import read_groups
from gitml.monitor.logs import read_window

START = pd.Timestamp("2026-11-29 08:00", tz="UTC")


def compacted(folder, rows: int = 1000, group: int = 100, categorical: bool = False):
    """One hour of ``rows`` rows in row groups of ``group`` (a compaction job's file), one a second."""
    ts = START + pd.to_timedelta(np.arange(rows), unit="s")
    ids = pd.Series([f"req-{i // 10}" for i in range(rows)])
    frame = pd.DataFrame({"request_id": ids.astype("category") if categorical else ids,
                          "row": np.arange(rows) % 10, "ts": ts, "model_version": "v1",
                          "x": np.arange(rows, dtype="float64")})
    path = folder / "requests/date=2026-11-29/hour=08/part-1-1-0.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=group)
    return path, frame


def test_groups_are_read_last_first_and_only_when_wanted(tmp_path):
    path, frame = compacted(tmp_path)
    asked, read = [], []

    def wanted(last: pd.Timestamp) -> bool:
        asked.append(last)
        return sum(t.num_rows for t in read) < 250  # the caller stops once it holds enough

    for table, _ in read_groups(path, wanted):
        read.append(table)
    assert [t.num_rows for t in read] == [100, 100, 100]
    assert read[0].column("x").to_pylist() == frame["x"].tolist()[-100:]  # the last group first
    assert asked == sorted(asked, reverse=True) and len(asked) == 10  # every footer entry, no row of 7 groups
    assert asked[0] == frame["ts"].iloc[-1]


def test_a_window_of_a_large_file_is_its_newest_rows(tmp_path):
    for categorical in (False, True):  # request ids as a pandas writer may store them: a dictionary
        folder = tmp_path / str(categorical)
        _, frame = compacted(folder, categorical=categorical)
        for rows in (1, 99, 100, 101, 250, 1000, 5000):
            window = read_window(folder, window_rows=rows)
            assert window.rows["x"].tolist() == frame["x"].tolist()[-rows:]
            assert list(window.layouts.values()) == [["requests/date=2026-11-29/hour=08/part-1-1-0.parquet"]]
        hours = read_window(folder, window_hours=0.1, now=START + pd.Timedelta(seconds=1000))
        assert hours.rows["x"].tolist() == frame["x"].tolist()[-360:]
