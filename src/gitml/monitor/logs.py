"""Read the request and feedback logs that ``gitml serve`` writes (see docs/logs.md).

Both logs are Parquet files under hive-style hour folders::

    <log_dir>/requests/date=YYYY-MM-DD/hour=HH/part-<unix_ns>-<pid>-<seq>.parquet
    <log_dir>/feedback/date=YYYY-MM-DD/hour=HH/part-<unix_ns>-<pid>-<seq>.parquet

A window of the last N rows or the last H hours reads only the files that can hold rows
of it, newest first: a row in hour folder ``h`` has ``ts`` before the end of ``h``
(``gitml serve`` files rows by the hour of their ``ts``; a writer filing by flush time
puts them later still, never earlier), so once N rows newer than the end of the next
older folder are in hand, older folders cannot contribute; within a folder, a file whose
newest ``ts`` (its Parquet statistics, read from the footer) is older than the N-th newest
row in hand, or than the window's start, is not read. (A row repeated with another ``ts``
in a file not read is neither seen nor counted.)

A row is one ``(request_id, row)``: the same rows read twice (a file shipped into two
folders, or copied into a second file) count once; :func:`read_window` says how many
repeats it dropped and which column layouts the window's files had, for the drift check's
schema comparison (:mod:`gitml.monitor.quality`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.errors import RequestLogError
from gitml.monitor.logfiles import Newest, hour_folders, read_groups, to_frame
from gitml.monitor.logwindow import rows_at, select
from gitml.package import logschema
from gitml.package.logschema import FEEDBACK, REQUESTS
from gitml.utils.storage import Location, join, location, relative

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

# The contract's columns as lists: pandas selects columns by list (a tuple is one key).
KEYS, REQUEST_META, FEEDBACK_COLUMNS = list(logschema.KEYS), list(logschema.REQUEST_META), list(logschema.FEEDBACK_COLUMNS)
CLOCK_GRACE = timedelta(hours=1)  # how far another server's clock may lag: labels read that much earlier


@dataclass
class RequestWindow:
    """The rows of a window, with what reading them found out about the log itself."""

    rows: pd.DataFrame  # one row per (request_id, row), oldest first
    duplicates: int = 0  # rows in the window's time span dropped as repeats of a (request_id, row)
    conflicting: int = 0  # of those, repeats whose values differ from the row kept
    # The column layouts of the files holding the window's rows: ((name, Arrow type), ...) -> files
    layouts: dict[tuple[tuple[str, str], ...], list[str]] = field(default_factory=dict)


def read_requests(
    log_dir: str | Path, window_rows: int | None = None, window_hours: float | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """The request log, oldest row first, cut to the last ``window_rows`` rows and/or hours.

    With both limits set the smaller window wins (rows must satisfy both). ``now`` is the
    end of the time window (default: the current UTC time). No log files give an empty
    frame with the metadata columns. Each ``(request_id, row)`` comes back once.

    Example:
        >>> recent = read_requests("logs", window_rows=5000)
        >>> recent[["request_id", "row", "ts", "prediction"]].tail(3)
    """
    return read_window(log_dir, window_rows, window_hours, now).rows


def read_window(
    log_dir: str | Path, window_rows: int | None = None, window_hours: float | None = None,
    now: datetime | None = None,
) -> RequestWindow:
    """:func:`read_requests` with the repeats it dropped and the files' column layouts.

    Example:
        >>> window = read_window("logs", window_rows=5000)
        >>> window.duplicates, len(window.layouts)
        (0, 1)
    """
    import numpy as np
    import pandas as pd

    cutoff = None
    if window_hours is not None:
        end = _utc(now) if now is not None else datetime.now(timezone.utc)
        cutoff = pd.Timestamp(end - timedelta(hours=float(window_hours)))
    log_dir = location(log_dir, "log folder")
    tables, paths, layouts = _newest_files(log_dir, cutoff, Newest(window_rows))
    if not tables:
        return RequestWindow(pd.DataFrame({c: pd.Series(dtype="object") for c in REQUEST_META}))
    # Oldest file first (they were read newest first), so that among rows stamped alike the
    # stable sort keeps the order they were written in, and a repeat keeps its first copy.
    tables, paths, layouts = tables[::-1], paths[::-1], layouts[::-1]
    starts = np.cumsum([0] + [t.num_rows for t in tables])
    chosen = select(tables, window_rows, cutoff)  # on request_id, row and ts alone (logwindow.py)
    window = RequestWindow(rows_at(tables, chosen.positions), chosen.duplicates, chosen.conflicting)
    for index in np.unique(np.searchsorted(starts, chosen.positions, side="right") - 1):
        files = window.layouts.setdefault(layouts[index], [])  # a file read in row groups is named once
        if (name := relative(paths[index], log_dir)) not in files:
            files.append(name)
    return window


def _newest_files(log_dir: Location, cutoff: Any, newest: Newest) -> tuple[list[Any], list[Any], list[Any]]:
    """Tables, paths and column layouts of the request files that can hold the window, newest first."""
    tables: list[pa.Table] = []
    paths: list[Location] = []
    layouts: list[tuple[tuple[str, str], ...]] = []
    for hour_end, files in hour_folders(join(log_dir, REQUESTS)):
        if cutoff is not None and hour_end is not None and hour_end <= cutoff:
            break  # this folder and every older one end before the window starts
        if hour_end is not None and newest.at_least(hour_end):
            break  # the last N rows are all newer than anything further back
        for path in files:
            # A row group all older than the window is not read (footer statistics), whole files too.
            for table, layout in read_groups(path, lambda last: not (
                    (cutoff is not None and last < cutoff) or newest.beyond(last))):
                missing = [c for c in KEYS if c not in table.column_names]
                if missing:
                    raise RequestLogError(f"Log file '{path}' lacks column(s) {missing}: its rows cannot "
                                          "be told apart (docs/logs.md).")
                tables.append(table)
                paths.append(path)
                layouts.append(layout)
                newest.add(table, KEYS)
    return tables, paths, layouts

def read_feedback(log_dir: str | Path, since: Any = None) -> pd.DataFrame:
    """The feedback log with one row per ``(request_id, row)``: the first label stands.

    ``label`` is text, or float64 when every file holds a regression model's numbers.

    The server refuses a second label for a row (409), so a repeat here comes from two servers
    or a file shipped twice; the earliest, as the server itself would keep, is the one read.
    ``since``: only labels of requests made from then on are wanted. A label arrives after
    its prediction, so folders and files holding only labels older than that (less an hour
    of :data:`CLOCK_GRACE` for other servers' clocks) are not read.

    Example:
        >>> labels = read_feedback("logs")
        >>> labels.columns.tolist()
        ['request_id', 'row', 'label', 'ts']
    """
    import pandas as pd

    oldest = None if since is None else pd.Timestamp(since) - CLOCK_GRACE
    tables = []
    folder = join(location(log_dir, "log folder"), FEEDBACK)
    for hour_end, files in hour_folders(folder):
        if oldest is not None and hour_end is not None and hour_end <= oldest:
            continue
        for path in files:
            tables += [table for table, _ in read_groups(path, lambda last: oldest is None or last >= oldest)]
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in FEEDBACK_COLUMNS})
    frame = to_frame(tables)
    missing = [c for c in FEEDBACK_COLUMNS if c not in frame.columns]
    if missing:
        raise RequestLogError(f"The feedback log in '{folder}' lacks column(s) "
                              f"{missing}. Expected: {FEEDBACK_COLUMNS} (docs/logs.md).")
    # Files were read newest first; a stable sort on ts keeps file order among equal times,
    # so reverse first to make the earlier file win a tie.
    frame = frame.iloc[::-1].sort_values("ts", kind="stable")
    frame = frame.drop_duplicates(KEYS, keep="first")
    if not pd.api.types.is_float_dtype(frame["label"]):  # a regression model's labels stay numbers
        frame["label"] = frame["label"].astype("string").astype(object)
    return frame[FEEDBACK_COLUMNS].sort_values("ts", kind="stable").reset_index(drop=True)


def labelled(
    log_dir: str | Path, target: str, features: list[str],
    window_rows: int | None = None, window_hours: float | None = None,
    *, classes: Sequence[Any] | None = None, regression: bool = False,
) -> pd.DataFrame:
    """Labelled production rows: requests in the window joined with their first label.

    Returns the ``features`` columns plus ``target`` holding the label. Labels are read as
    text; they come back as the bundle's classes when ``classes`` is given (matched
    as text, so ``"1"`` becomes ``1``), as float64 numbers with ``regression`` (a label
    that is not a number: NaN), else as integers when every label is an integer, else as
    strings.

    Example:
        >>> batch = labelled("logs", "target", ["num_0", "cat_0"], window_hours=24)
        >>> batch.to_parquet("data/production/2026-11-29.parquet")
    """
    requests = read_requests(log_dir, window_rows=window_rows, window_hours=window_hours)
    since = requests["ts"].min() if len(requests) else None
    return join_labels(requests, read_feedback(log_dir, since), target, features, classes=classes,
                       source=join(location(log_dir), REQUESTS), regression=regression)


def join_labels(
    requests: pd.DataFrame, feedback: pd.DataFrame, target: str, features: list[str],
    *, classes: Sequence[Any] | None = None, source: str | Path = "the request log",
    keep: Sequence[str] = (), regression: bool = False,
) -> pd.DataFrame:
    """The inner join behind :func:`labelled`, for a window already read; ``keep`` names more
    request-log columns to carry next to the features (the logged answer, its model version)."""
    import pandas as pd

    missing = [c for c in features if c not in requests.columns]
    if len(requests) and missing:
        raise RequestLogError(f"The request log in '{source}' lacks feature column(s) {missing}.")
    columns = [*features, *(c for c in keep if c not in features)]
    if requests.empty or feedback.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in [*columns, target]})
    requests = requests.drop_duplicates(KEYS, keep="last")
    joined = requests[[*KEYS, *columns]].merge(
        feedback[[*KEYS, "label"]], on=KEYS, how="inner", validate="one_to_one"
    )
    out = joined[columns].copy()
    out[target] = typed_labels(joined["label"], classes, regression=regression)
    return out.reset_index(drop=True)


def typed_labels(labels: pd.Series, classes: Sequence[Any] | None = None, *,
                 regression: bool = False) -> pd.Series:
    """Text labels from the log as the classes or numbers they stand for (see :func:`labelled`)."""
    import pandas as pd

    if regression:  # float64 as logged; text (an older or hand-written log) parsed exactly, else NaN
        if pd.api.types.is_float_dtype(labels):
            return labels.astype("float64")
        return pd.Series([_number(v) for v in labels], index=labels.index, dtype="float64")
    text = labels.astype("string")
    if classes is not None:
        lookup = {class_key(c): c for c in classes}
        values = [lookup.get(_text_key(v), v) for v in text]
        return pd.Series(values, index=labels.index, dtype=object).infer_objects()
    if len(text) and text.str.fullmatch(r"-?\d+").fillna(False).all():
        return text.astype("int64")
    return text.astype(object)


# --------------------------------------------------------------------------- helpers


def _utc(moment: Any) -> datetime:
    import pandas as pd

    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def _number(value: Any) -> float:
    try:
        return float(value)  # Python's parser: the text of a float64 reads back as that float
    except (TypeError, ValueError):
        return float("nan")


def _text_key(text: Any) -> str:
    """A logged label as :func:`class_key` writes its class: ``"1.0"`` -> ``"1"``."""
    text = str(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def class_key(value: Any) -> str:
    # Same rule as the preprocessor: 1, 1.0 and "1" are the same class.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
