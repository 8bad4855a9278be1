"""A data contract inferred from a snapshot chunk by chunk: the rules of ``gitml.data.infer``, merged.

Every inference rule reduces a column to a few numbers that merge across chunks: a null
count, a minimum and maximum, whether every value is integral, a bool or a date, the
earliest and latest date and whether any has a time, the count of each text level. So a
snapshot larger than memory is inferred from ``data.chunk_rows`` rows at a time, plus the
label column read alone (its task and classes). The contract is the one
:func:`gitml.data.infer.infer_contract` gives the whole frame (tests/data/test_chunked.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gitml.data.contract import ColumnSpec, Contract, ExcludedColumn, as_datetimes
from gitml.data.dates import DATE_TEXT
from gitml.data.infer import (
    MAX_CATEGORIES,
    NULL_MARGIN,
    _all,
    _is_bool,
    add_column,
    dates_spec,
    labelled_contract,
    null_limit,
    numeric_spec,
    text_spec,
)

if TYPE_CHECKING:
    import pandas as pd

    from gitml.data.chunks import Snapshot

HEAD = 1000  # the values a text column's first check looks at (gitml.data.infer._looks_like_dates)


class ColumnStats:
    """What the inference rules need of one column, gathered a chunk at a time."""

    def __init__(self, dtype: Any):
        from pandas.api import types

        self.kind = ("bool" if types.is_bool_dtype(dtype) else "datetime" if types.is_datetime64_any_dtype(dtype)
                     else "number" if types.is_numeric_dtype(dtype) else "text")
        self.object = types.is_object_dtype(dtype)
        self.rows = self.values = self.head = 0
        self.low: Any = None
        self.high: Any = None
        self.integral = self.all_bool = self.dates = True
        self.timed = False
        self.counts: pd.Series | None = None

    def add(self, series: pd.Series) -> None:
        values = series.dropna()
        self.rows += len(series)
        self.values += len(values)
        if self.kind == "datetime":
            self._add_dates(as_datetimes(values))
        elif self.kind == "number" and len(values):
            self._add_range(float(values.min()), float(values.max()))
            self.integral = self.integral and bool(((values % 1) == 0).all())
        elif self.kind == "text":
            self._add_text(values)

    def _add_range(self, low: Any, high: Any) -> None:
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def _add_dates(self, parsed: pd.Series) -> None:
        if len(parsed):
            self._add_range(parsed.min(), parsed.max())
            self.timed = self.timed or bool((parsed != parsed.dt.normalize()).any())

    def _add_text(self, values: pd.Series) -> None:
        if self.object and self.all_bool:
            self.all_bool = _all(values, _is_bool)
        if self.dates and self.head < HEAD:  # the column's first values must all be text
            head = values.head(HEAD - self.head)
            self.head += len(head)
            self.dates = all(isinstance(v, str) for v in head)
        if self.dates and len(values):
            text = values.astype(str)
            self.dates = bool(text.head(HEAD).str.match(DATE_TEXT).all() and text.str.match(DATE_TEXT).all())
            parsed = as_datetimes(text) if self.dates else None
            self.dates = parsed is not None and bool(parsed.notna().all())
            if self.dates and parsed is not None:
                self._add_dates(parsed)
        counts = values.astype(str).value_counts()
        self.counts = counts if self.counts is None else self.counts.add(counts, fill_value=0).astype("int64")

    def spec(self, margin: float, max_categories: int) -> ColumnSpec | ExcludedColumn:
        """The column's spec, by the rules and in the order of ``gitml.data.infer._column``."""
        if self.kind == "bool" or (self.object and self.values and self.all_bool):
            return ColumnSpec("bool")
        if self.kind == "datetime" or (self.kind == "text" and self.values and self.dates):
            return ColumnSpec("datetime") if self.low is None else dates_spec(self.low, self.high, self.timed, margin)
        if self.kind == "number":
            return ColumnSpec("float") if self.low is None else numeric_spec(self.low, self.high, self.integral, margin)
        assert self.counts is not None
        return text_spec(self.counts, self.values, max_categories)


def infer_from_chunks(
    snapshot: Snapshot, label: str, chunk_rows: int, range_margin: float = 0.25, max_null_fraction: float = 0.0,
    null_margin: float = NULL_MARGIN, max_categories: int = MAX_CATEGORIES, task: str | None = None,
) -> Contract:
    """:func:`gitml.data.infer.infer_contract` of the snapshot, read ``chunk_rows`` rows at a time."""
    return infer_from_frames(snapshot.chunks(chunk_rows), label, range_margin, max_null_fraction, null_margin,
                             max_categories, task)


def infer_from_frames(
    frames: Iterable[pd.DataFrame], label: str, range_margin: float = 0.25, max_null_fraction: float = 0.0,
    null_margin: float = NULL_MARGIN, max_categories: int = MAX_CATEGORIES, task: str | None = None,
) -> Contract:
    """:func:`gitml.data.infer.infer_contract` of ``frames`` concatenated (each typed as the whole is),
    holding one frame and the label column at a time."""
    import pandas as pd

    names: list[Any] = []
    stats: dict[Any, ColumnStats] = {}
    labels = []
    for frame in frames:
        if not stats:
            names = list(frame.columns)
            stats = {name: ColumnStats(frame[name].dtype) for name in names if name != label}
        if label in frame.columns:
            labels.append(frame[label])
        for name, column in stats.items():
            column.add(frame[name])
    contract = labelled_contract(names, lambda _: pd.concat(labels, ignore_index=True), label, task)
    for name, column in stats.items():
        spec = column.spec(range_margin, max_categories)
        spec.max_null_fraction = null_limit((column.rows - column.values) / column.rows if column.rows else 0.0,
                                            max_null_fraction, null_margin)
        add_column(contract, name, spec)
    return contract
