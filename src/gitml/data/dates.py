"""Dates as the pipeline reads them: parsed to naive UTC, carried as epoch seconds, split into parts.

A datetime column reaches the preprocessing as text (a CSV export), as ``datetime64`` (a
Parquet snapshot) or, after request validation, as float64 seconds since 1970-01-01 UTC
(NaN when missing): one float per value fits the server's numeric paths, the request log
and the drift check without a type of its own. :func:`epoch_seconds` reads all three.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# The numeric parts a date expands into (data.preprocess.datetime_parts). "days" counts days
# since the training split's earliest date, so later dates (the normal case when serving)
# continue the scale instead of falling outside a set of known levels.
DATE_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour", "minute", "days")
SECONDS_PER_DAY = 86_400.0
PANDAS_SECONDS = 9.2e9  # pandas' nanosecond timestamps span about 1678-2261, +-9.22e9 s around 1970
# A text value must look like a date before any parsing is tried: "12" or "1.5" parse too.
# ISO 8601 dates numpy parses exactly as pandas does: no offset other than Z (UTC).
PLAIN_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?Z?$")
DATE_TEXT = re.compile(r"^\s*(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4})([ T]\S.*)?$")


def as_datetimes(series: Any) -> Any:
    """Timezone-naive datetimes (UTC for aware ones), NaT where a value is no date.

    ISO 8601 first (vectorised); only a column that is not all ISO pays for per-value parsing.
    """
    import pandas as pd
    from pandas.api import types

    if types.is_datetime64_any_dtype(series):
        parsed = series
    else:
        text = series.astype("string")
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
        if (parsed.isna() & text.notna()).any():
            parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def as_datetimes_scalar(value: str) -> Any:
    import pandas as pd

    return as_datetimes(pd.Series([value])).iloc[0]


def _plain_iso(items: list[Any]) -> np.ndarray | None:
    """Epoch seconds of ISO dates without a zone (or in UTC, ``Z``), by numpy; None if any value is not one.

    The common request (a few ISO strings) costs microseconds this way, against milliseconds
    through pandas' parser, which stays the path for everything else.
    """
    import numpy as np

    if not all(v is None or (isinstance(v, str) and PLAIN_ISO.match(v)) for v in items):
        return None
    try:
        stamps = np.array([None if v is None else v.rstrip("Z") for v in items], dtype="datetime64[us]")
    except ValueError:  # a month 13 or a 30 February: let pandas say it is no date
        return None
    seconds = np.where(np.isnat(stamps), np.nan, stamps.astype("int64").astype("float64") / 1e6)
    if (np.abs(seconds) > PANDAS_SECONDS).any():  # outside what pandas represents: refused as it would
        return None
    return seconds


def epoch_seconds(values: Any) -> np.ndarray:
    """float64 seconds since 1970-01-01 UTC (NaN where missing or no date).

    Numbers are taken as already converted (a validated request); anything else is parsed.
    """
    import numpy as np
    import pandas as pd
    from pandas.api import types

    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if types.is_numeric_dtype(series) and not types.is_bool_dtype(series):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    if series.dtype == object and len(series) <= 1_000:  # a request: try the cheap parse first
        fast = _plain_iso([None if v is None or v is pd.NaT or (isinstance(v, float) and v != v) else v
                           for v in series.tolist()])
        if fast is not None:
            return fast
    parsed = as_datetimes(series.astype(object) if series.dtype.kind not in "mM" else series)
    seconds = (parsed - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
    return np.asarray(seconds.to_numpy(dtype="float64", na_value=np.nan))


def date_parts(seconds: np.ndarray, parts: list[str], origin: float) -> np.ndarray:
    """``(rows, len(parts))`` float64 parts of epoch seconds; NaN where the date is missing.

    ``origin`` is the epoch second "days" counts from. Computed with numpy's calendar
    units: a served row pays microseconds, where pandas' accessors cost about a millisecond.
    """
    import numpy as np

    missing = np.isnan(seconds)
    whole = np.floor(np.where(missing, 0.0, seconds)).astype("int64")
    stamp = whole.astype("datetime64[s]")
    day, month, year = (stamp.astype(f"datetime64[{unit}]") for unit in ("D", "M", "Y"))
    values = {
        "year": lambda: year.astype("int64") + 1970,
        "month": lambda: month.astype("int64") % 12 + 1,
        "day": lambda: (day - month.astype("datetime64[D]")).astype("int64") + 1,
        "dayofweek": lambda: (day.astype("int64") + 3) % 7,  # 1970-01-01 was a Thursday; Monday is 0
        "dayofyear": lambda: (day - year.astype("datetime64[D]")).astype("int64") + 1,
        "hour": lambda: (whole % 86_400) // 3_600,
        "minute": lambda: (whole % 3_600) // 60,
        "days": lambda: (seconds - origin) / SECONDS_PER_DAY,
    }
    out = np.empty((len(seconds), len(parts)), dtype="float64")
    for j, part in enumerate(parts):
        out[:, j] = values[part]()
    out[missing] = np.nan
    return out


def iso(seconds: float) -> str:
    """An epoch second as ISO 8601 text (day precision when it is midnight)."""
    import pandas as pd

    stamp = pd.Timestamp(seconds, unit="s")
    return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()


def request_dates(values: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Request values of a datetime input: (epoch seconds, not-a-date mask, missing mask).

    Dates come as text that looks like one (ISO 8601, or day/month forms pandas reads),
    as datetime objects or as a typed timestamp array; None, NaN and an empty field are
    missing. A number is no date: its unit would be a guess.
    """
    import datetime as dt

    import numpy as np
    import pandas as pd

    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        seconds = epoch_seconds(pd.Series(values))
        return seconds, np.zeros(len(values), dtype=bool), np.isnan(seconds)
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    missing = np.fromiter((v is None or (isinstance(v, float) and v != v) or v is pd.NaT
                           or (isinstance(v, str) and not v.strip()) for v in items), dtype=bool, count=len(items))
    dated = np.fromiter((isinstance(v, (dt.date, np.datetime64)) or (isinstance(v, str) and bool(DATE_TEXT.match(v)))
                         for v in items), dtype=bool, count=len(items))
    texts = pd.Series([v if ok else None for v, ok in zip(items, dated, strict=True)], dtype=object)
    seconds = epoch_seconds(texts) if dated.any() else np.full(len(items), np.nan)
    bad = ~missing & np.isnan(seconds)
    return seconds, bad, missing
