"""Infer a data contract from a trusted snapshot, and say what was decided.

The rule the inference keeps: the data it was inferred from always passes. Null limits
are the observed null share plus a margin, integer columns (also integral floats, as a
CSV with nulls reads them) get integer bounds, date columns are recorded as datetime
features with a lower bound only (later dates are the normal case in production), a text
column with a distinct value per row is recorded as an id and kept out of the features
(``Contract.excluded``), and a category with more levels than ``max_categories`` lists its
most frequent ones and is marked ``open``: a level it does not list is read as "other"
instead of refusing the row.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.data.contract import ColumnSpec, Contract, ExcludedColumn, as_datetimes
from gitml.data.dates import DATE_TEXT
from gitml.data.task import TASK_KEY, check_task, infer_task
from gitml.errors import ConfigError, GitmlError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

NULL_MARGIN = 0.05  # absolute: a 100-row batch of a 4%-null column often holds 7% nulls
MAX_CATEGORIES = 50  # data.schema.max_categories' default
ID_UNIQUE_SHARE = 0.95  # distinct values per non-null row for a text column to be an id


def infer_contract(
    frame: pd.DataFrame, label: str, range_margin: float = 0.25, max_null_fraction: float = 0.0,
    null_margin: float = NULL_MARGIN, max_categories: int = MAX_CATEGORIES, task: str | None = None,
) -> Contract:
    """Infer a contract from a trusted snapshot.

    Numeric ranges are widened by ``range_margin`` (a share of the observed span); a column
    with nulls may hold its observed null share plus ``null_margin`` (never less than
    ``max_null_fraction``); one with none keeps ``max_null_fraction``, so its serving
    signature stays non-nullable. ``task`` (``data.task``) overrides the task the label's
    values suggest (:func:`gitml.data.task.infer_task`); the choice and its reason are logged.
    """
    return infer_from_columns(list(frame.columns), frame.__getitem__, label, range_margin, max_null_fraction,
                              null_margin, max_categories, task)


def infer_from_columns(
    names: list[Any], column: Callable[[Any], pd.Series], label: str, range_margin: float = 0.25,
    max_null_fraction: float = 0.0, null_margin: float = NULL_MARGIN, max_categories: int = MAX_CATEGORIES,
    task: str | None = None,
) -> Contract:
    """:func:`infer_contract` over columns read one at a time: ``column(name)`` gives one whole column.

    Every rule looks at one column, so a snapshot larger than memory is inferred from
    with one column in memory at a time (``gitml.data.chunks.Snapshot.column``).
    """
    contract = labelled_contract(names, column, label, task)
    for name in names:
        if name == label:
            continue
        series = column(name)
        spec = _column(series, range_margin, max_categories)
        spec.max_null_fraction = null_limit(float(series.isna().mean()), max_null_fraction, null_margin)
        add_column(contract, name, spec)
    return contract


def labelled_contract(names: list[Any], column: Callable[[Any], pd.Series], label: str, task: str | None) -> Contract:
    """A contract with the label's task and classes and no columns yet; the label column is read alone."""
    if label not in names:
        raise ConfigError("data", "data.target", f"label column '{label}' not in the snapshot.")
    labels = column(label)
    suggested, why = infer_task(labels)
    if task is None:
        task = suggested
        log.info("task %s, inferred from label '%s' (%s); set data.task (gitml schema infer --task) to "
                 "override", task, label, why)
    classes = [] if task == "regression" else sorted(labels.dropna().unique().tolist())
    check_task(task, classes, label, "data", TASK_KEY)
    return Contract(label=label, classes=classes, task=task)


def add_column(contract: Contract, name: Any, spec: ColumnSpec | ExcludedColumn) -> None:
    if isinstance(spec, ExcludedColumn):
        contract.excluded[str(name)] = spec
    else:
        contract.columns[str(name)] = spec


def null_limit(observed: float, floor: float, margin: float) -> float:
    """Observed share plus margin, rounded up to 3 decimals so the source stays within it."""
    if observed <= 0.0:
        return floor
    return max(floor, min(1.0, math.ceil((observed + margin) * 1000) / 1000))


def _column(series: pd.Series, margin: float, max_categories: int) -> ColumnSpec | ExcludedColumn:
    from pandas.api import types

    values = series.dropna()
    if types.is_bool_dtype(series) or (types.is_object_dtype(series) and len(values) and _all(values, _is_bool)):
        return ColumnSpec("bool")  # object dtype when a CSV bool column has nulls
    if types.is_datetime64_any_dtype(series) or _looks_like_dates(values):
        return _dates(values, margin)
    if types.is_numeric_dtype(series):
        return _numeric(values, margin)
    return text_spec(values.astype(str).value_counts(), len(values), max_categories)


def text_spec(counts: pd.Series, n_values: int, max_categories: int) -> ColumnSpec | ExcludedColumn:
    """A text column from its level counts: an id, an open category (the most frequent levels) or a category."""
    if len(counts) > max_categories and len(counts) >= ID_UNIQUE_SHARE * n_values:
        return ExcludedColumn("id", f"{len(counts)} distinct values in {n_values} rows: an identifier, "
                                    "not a feature")
    if len(counts) > max_categories:  # the most frequent levels (ties by name), the rest read as "other"
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:max_categories]
        return ColumnSpec("category", categories=sorted(str(level) for level, _ in ranked), open=True)
    return ColumnSpec("category", categories=sorted(str(level) for level in counts.index))


def _all(values: pd.Series, test: Any) -> bool:
    """``test`` holds for every value; the first 1,000 are tried first (a text column of 5M rows
    is no bool or date: answered without mapping every row)."""
    head = values.head(1000)
    return bool(head.map(test).all()) and (len(values) == len(head) or bool(values.map(test).all()))


def _is_bool(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (bool, np.bool_))


def _numeric(values: pd.Series, margin: float) -> ColumnSpec:
    if values.empty:
        return ColumnSpec("float")
    return numeric_spec(float(values.min()), float(values.max()), bool(((values % 1) == 0).all()), margin)


def numeric_spec(low: float, high: float, integral: bool, margin: float) -> ColumnSpec:
    """``integral``: int dtype, or integral floats (a CSV int column with nulls)."""
    pad = (high - low) * margin
    if integral:
        return ColumnSpec("int", math.floor(low - pad), math.ceil(high + pad))
    return ColumnSpec("float", low - pad, high + pad)


def _looks_like_dates(values: pd.Series) -> bool:
    if values.empty or not all(isinstance(v, str) for v in values.head(1000)):
        return False
    if not values.head(1000).str.match(DATE_TEXT).all():  # most text columns: answered here
        return False
    text = values.astype(str)
    return bool(text.str.match(DATE_TEXT).all() and as_datetimes(text).notna().all())


def _dates(values: pd.Series, margin: float) -> ColumnSpec:
    parsed = as_datetimes(values)
    if parsed.empty:
        return ColumnSpec("datetime")
    return dates_spec(parsed.min(), parsed.max(), bool((parsed != parsed.dt.normalize()).any()), margin)


def dates_spec(low: Any, high: Any, timed: bool, margin: float) -> ColumnSpec:
    """Day precision unless the data has times (``timed``): a bound that reads as the data does."""
    earliest = low - (high - low) * margin
    bound = earliest if timed else earliest.floor("D")
    return ColumnSpec("datetime", min=bound.isoformat() if timed else bound.date().isoformat())


def summary_lines(contract: Contract) -> list[str]:
    """One line per column: kind, nulls allowed, bounds or levels, flags; the label last."""
    lines = []
    for name, spec in contract.columns.items():
        if spec.dtype == "category":
            levels = spec.categories or []
            shown = ", ".join(levels[:5]) + (", ..." if len(levels) > 5 else "")
            detail = f"{len(levels)} levels ({shown})" + (", open: other levels read as 'other'" if spec.open else "")
        elif spec.dtype == "bool":
            detail = "true/false"
        elif spec.dtype == "datetime":
            detail = f"from {spec.min}, later dates allowed" if spec.min else "any date"
        else:
            detail = f"[{spec.min:g}, {spec.max:g}]" if spec.min is not None and spec.max is not None else "any"
        lines.append(f"{name}: {spec.dtype}, nulls <= {spec.max_null_fraction:g}, {detail}")
    for name, other in contract.excluded.items():
        bound = f", from {other.min}" if other.min else ""
        lines.append(f"{name}: {other.dtype}, nulls <= {other.max_null_fraction:g}{bound}; "
                     f"excluded from features ({other.reason})")
    if contract.regression:
        lines.append(f"{contract.label}: label, task regression (a number)")
    else:
        shown = ", ".join(str(c) for c in contract.classes[:5]) + (", ..." if len(contract.classes) > 5 else "")
        lines.append(f"{contract.label}: label, task {contract.task}, {len(contract.classes)} classes ({shown})")
    return lines


def infer_contract_file(source: str | Path, out: str | Path, label: str, range_margin: float = 0.25,
                        **options: Any) -> Path:
    """Infer a contract from a trusted CSV/Parquet file or snapshot folder and write it as YAML to ``out``.

    Column names are snake_cased as ingest does, so the contract names what the pipeline
    sees. What was decided is logged one line per column and heads the file as comments.
    The source is read in chunks, as the pipeline's stages read it (docs/scale.md).
    """
    import yaml

    from gitml.data.chunks import DEFAULT_CHUNK_ROWS, Snapshot
    from gitml.data.infer_chunks import infer_from_frames
    from gitml.data.snapshots import snapshot_files
    from gitml.data.sources import iter_csv, snake_case
    from gitml.utils.atomic import write_text

    source, rows = Path(source), 0
    if not source.exists():
        raise GitmlError(f"No file or folder '{source}' to infer a contract from.")
    if not source.is_dir() and source.suffix not in (".csv", ".parquet"):
        raise GitmlError(f"Cannot infer a contract from '{source}': give a .csv or .parquet file, "
                         "or a folder of them.")

    def frames() -> Iterator[pd.DataFrame]:
        nonlocal rows
        if source.suffix == ".csv" and not source.is_dir():
            chunks: Iterable[pd.DataFrame] = iter_csv(source, label, DEFAULT_CHUNK_ROWS)
        else:
            chunks = Snapshot(snapshot_files(source) if source.is_dir() else [source]).chunks(DEFAULT_CHUNK_ROWS)
        for chunk in chunks:
            rows += len(chunk)
            yield chunk.set_axis([snake_case(c) for c in chunk.columns], axis=1)

    contract = infer_from_frames(frames(), snake_case(label), range_margin, **options)
    lines = summary_lines(contract)
    log.info("inferred from %s (%d rows):\n  %s", source, rows, "\n  ".join(lines))
    header = "".join(f"# {line}\n" for line in [f"inferred by gitml schema infer from {source.name}", *lines])
    return write_text(out, header + yaml.safe_dump(contract.to_dict(), sort_keys=False))
