"""Read the request and feedback logs that ``gitml serve`` writes (see docs/logs.md).

Both logs are Parquet files under hive-style hour folders::

    <log_dir>/requests/date=YYYY-MM-DD/hour=HH/part-<unix_ns>-<pid>-<seq>.parquet
    <log_dir>/feedback/date=YYYY-MM-DD/hour=HH/part-<unix_ns>-<pid>-<seq>.parquet

A window of the last N rows or the last H hours reads only the hour folders that can hold
rows of it, newest first: a row in hour folder ``h`` has ``ts`` before the end of ``h``
(``gitml serve`` files rows by the hour of their ``ts``; a writer filing by flush time
puts them later still, never earlier), so once N rows newer than the end of the next
older folder are in hand, older folders cannot contribute.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.errors import RequestLogError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

REQUESTS, FEEDBACK = "requests", "feedback"
KEYS = ["request_id", "row"]
REQUEST_META = ["request_id", "row", "ts", "model_version"]
FEEDBACK_COLUMNS = ["request_id", "row", "label", "ts"]
PROBA_PREFIX = "proba_"
_HOUR_DIR = re.compile(r"date=(\d{4}-\d{2}-\d{2})/hour=(\d{1,2})$")


def read_requests(
    log_dir: str | Path, window_rows: int | None = None, window_hours: float | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """The request log, oldest row first, cut to the last ``window_rows`` rows and/or hours.

    With both limits set the smaller window wins (rows must satisfy both). ``now`` is the
    end of the time window (default: the current UTC time). No log files give an empty
    frame with the metadata columns.

    Example:
        >>> recent = read_requests("logs", window_rows=5000)
        >>> recent[["request_id", "row", "ts", "prediction"]].tail(3)
    """
    import pandas as pd

    cutoff = None
    if window_hours is not None:
        end = _utc(now) if now is not None else datetime.now(timezone.utc)
        cutoff = pd.Timestamp(end - timedelta(hours=float(window_hours)))
    frames: list[pd.DataFrame] = []
    for hour_end, files in _hour_folders(Path(log_dir) / REQUESTS):
        if cutoff is not None and hour_end is not None and hour_end <= cutoff:
            break  # this folder and every older one end before the window starts
        if window_rows is not None and hour_end is not None and _newest_after(frames, window_rows, hour_end):
            break  # the last N rows are all newer than anything further back
        frames.extend(_read(path) for path in files)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in REQUEST_META})
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    if cutoff is not None:
        frame = frame[frame["ts"] >= cutoff]
    if window_rows is not None:
        frame = frame.tail(max(int(window_rows), 0))
    return frame.reset_index(drop=True)


def read_feedback(log_dir: str | Path) -> pd.DataFrame:
    """The feedback log with one row per ``(request_id, row)``: the latest label wins.

    Example:
        >>> labels = read_feedback("logs")
        >>> labels.columns.tolist()
        ['request_id', 'row', 'label', 'ts']
    """
    import pandas as pd

    frames = [_read(path) for _, files in _hour_folders(Path(log_dir) / FEEDBACK) for path in files]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in FEEDBACK_COLUMNS})
    frame = pd.concat(frames, ignore_index=True)
    missing = [c for c in FEEDBACK_COLUMNS if c not in frame.columns]
    if missing:
        raise RequestLogError(f"The feedback log in '{Path(log_dir) / FEEDBACK}' lacks column(s) "
                              f"{missing}. Expected: {FEEDBACK_COLUMNS} (docs/logs.md).")
    # Files were read newest first; a stable sort on ts keeps file order among equal times,
    # so reverse first to make the later file win a tie.
    frame = frame.iloc[::-1].sort_values("ts", kind="stable")
    frame = frame.drop_duplicates(KEYS, keep="last")
    frame["label"] = frame["label"].astype("string").astype(object)
    return frame[FEEDBACK_COLUMNS].sort_values("ts", kind="stable").reset_index(drop=True)


def labelled(
    log_dir: str | Path, target: str, features: list[str],
    window_rows: int | None = None, window_hours: float | None = None,
    *, classes: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Labelled production rows: requests in the window joined with their latest label.

    Returns the ``features`` columns plus ``target`` holding the label. Labels are text
    in the log; they come back as the bundle's classes when ``classes`` is given (matched
    as text, so ``"1"`` becomes ``1``), else as integers when every label is an integer,
    else as strings.

    Example:
        >>> batch = labelled("logs", "target", ["num_0", "cat_0"], window_hours=24)
        >>> batch.to_parquet("data/production/2026-11-29.parquet")
    """
    requests = read_requests(log_dir, window_rows=window_rows, window_hours=window_hours)
    return join_labels(requests, read_feedback(log_dir), target, features, classes=classes,
                       source=Path(log_dir) / REQUESTS)


def join_labels(
    requests: pd.DataFrame, feedback: pd.DataFrame, target: str, features: list[str],
    *, classes: Sequence[Any] | None = None, source: str | Path = "the request log",
) -> pd.DataFrame:
    """The inner join behind :func:`labelled`, for a window already read."""
    import pandas as pd

    missing = [c for c in features if c not in requests.columns]
    if len(requests) and missing:
        raise RequestLogError(f"The request log in '{source}' lacks feature column(s) {missing}.")
    if requests.empty or feedback.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in [*features, target]})
    requests = requests.drop_duplicates(KEYS, keep="last")
    joined = requests[[*KEYS, *features]].merge(
        feedback[[*KEYS, "label"]], on=KEYS, how="inner", validate="one_to_one"
    )
    out = joined[features].copy()
    out[target] = typed_labels(joined["label"], classes)
    return out.reset_index(drop=True)


def typed_labels(labels: pd.Series, classes: Sequence[Any] | None = None) -> pd.Series:
    """Text labels from the log as the classes they stand for (see :func:`labelled`)."""
    import pandas as pd

    text = labels.astype("string")
    if classes is not None:
        lookup = {class_key(c): c for c in classes}
        values = [lookup.get(_text_key(v), v) for v in text]
        return pd.Series(values, index=labels.index, dtype=object).infer_objects()
    if len(text) and text.str.fullmatch(r"-?\d+").fillna(False).all():
        return text.astype("int64")
    return text.astype(object)


def feature_columns(requests: pd.DataFrame) -> list[str]:
    """Names of the feature columns in a request-log frame (not metadata, not predictions)."""
    skip = {*REQUEST_META, "prediction"}
    return [c for c in requests.columns if c not in skip and not str(c).startswith(PROBA_PREFIX)]


# --------------------------------------------------------------------------- helpers


def _hour_folders(root: Path) -> list[tuple[Any, list[Path]]]:
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


def _newest_after(frames: list[pd.DataFrame], rows: int, moment: Any) -> bool:
    """True when ``frames`` hold at least ``rows`` rows stamped at or after ``moment``."""
    return sum(int((frame["ts"] >= moment).sum()) for frame in frames) >= rows


def _read(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise RequestLogError(f"Cannot read log file '{path}': {exc}") from exc
    if "ts" not in frame.columns:
        raise RequestLogError(f"Log file '{path}' has no 'ts' column (docs/logs.md).")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def _utc(moment: Any) -> datetime:
    import pandas as pd

    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


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
