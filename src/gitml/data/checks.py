"""What a contract check found (``Failure``), and a file checked chunk by chunk.

:func:`check_file` validates a snapshot file ``data.chunk_rows`` rows at a time and merges
what each chunk found into the report one whole-frame :func:`gitml.data.contract.check_frame`
gives: row counts add up, examples are the file's first ones, a null share is judged on
the file's null count (a chunk's share is not the file's), and the failures come in the
order pandera lists them (row-level checks, then column-level ones, each in the
contract's column and check order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from gitml.data.contract import Contract

SCHEMA_RULES = ("column_present", "column_declared")


@dataclass
class Failure:
    """One broken rule: which column, which rule, how many rows, a few examples."""

    snapshot: str
    column: str
    rule: str
    count: int
    examples: list[Any]

    def sentence(self) -> str:
        shown = ", ".join(repr(e) for e in self.examples[:3])
        return f"{self.snapshot}: column '{self.column}' failed '{self.rule}' ({self.count} row(s); e.g. {shown})"


def describe(frame: Any, snapshot: str, column: str, rule: str, count: int, examples: list[Any]) -> Failure:
    """Column-level checks report a bare False; say what was actually found instead."""
    series = frame[column]
    if _is_dtype(rule):
        bad = series.dropna()
        bad = bad[~bad.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))]
        found = [f"dtype {series.dtype}", *bad.head(2).tolist()]
        return Failure(snapshot, column, rule, len(bad) or len(series), found)
    if rule.startswith("max_null_fraction"):
        nulls = int(series.isna().sum())
        return Failure(snapshot, column, rule, nulls, [null_share(nulls, len(series))])
    if rule == "integral_values":
        values = series.dropna()
        bad = values[(values % 1) != 0]
        return Failure(snapshot, column, rule, len(bad), bad.head(3).tolist())
    return Failure(snapshot, column, rule, count, examples)


def null_share(nulls: int, rows: int) -> str:
    return f"null fraction {nulls / max(rows, 1):.3f}"


def _is_dtype(rule: str) -> bool:
    return rule.startswith("dtype_") and rule != "dtype_bool"  # dtype_bool is a row-level isin


def _column_level(rule: str) -> bool:
    return _is_dtype(rule) or rule == "integral_values" or rule.startswith("max_null_fraction")


@dataclass
class _Merged:
    """One (column, rule) over the chunks that broke it."""

    first: Failure
    count: int = 0
    bad: int = 0  # dtype rules: values that are not numbers
    rows: int = 0  # dtype rules: rows of the chunks that failed
    examples: list[Any] = field(default_factory=list)

    def add(self, found: Failure, rows: int) -> None:
        if _is_dtype(found.rule):  # describe(): examples are the dtype, then up to 2 bad values
            self.bad += found.count if len(found.examples) > 1 else 0
            self.rows += rows
            self.examples += found.examples[1:]
        elif found.rule in SCHEMA_RULES:
            self.count += found.count
        else:
            self.count += found.count
            self.examples += found.examples
        del self.examples[3:]

    def failure(self) -> Failure:
        first = self.first
        if _is_dtype(first.rule):
            return Failure(first.snapshot, first.column, first.rule, self.bad or self.rows,
                           [first.examples[0], *self.examples[:2]])
        examples = first.examples if first.rule in SCHEMA_RULES else self.examples
        return Failure(first.snapshot, first.column, first.rule, self.count, examples)


def check_file(path: Path, contract: Contract, chunk_rows: int, snapshot: str | None = None,
               ) -> tuple[int, list[Failure]]:
    """(rows, failures) of one Parquet file checked ``chunk_rows`` rows at a time."""
    from gitml.data.chunks import Snapshot

    name = str(path) if snapshot is None else snapshot
    table = Snapshot([path])
    return check_chunks(_frames(table, chunk_rows), contract, name, table.columns)


def check_chunks(frames: Iterable[pd.DataFrame], contract: Contract, snapshot: str, columns: list[str],
                 ) -> tuple[int, list[Failure]]:
    """(rows, failures) of the frames of one snapshot file, as one check of them concatenated would report."""
    from gitml.data.contract import check_frame

    limits = {name: spec.max_null_fraction for name, spec in contract.columns.items() if name in columns}
    limits |= {name: spec.max_null_fraction for name, spec in contract.excluded.items() if name in columns}
    merged: dict[tuple[str, str], _Merged] = {}
    nulls = dict.fromkeys(limits, 0)
    rows = 0
    for frame in frames:
        for found in check_frame(frame, contract, snapshot, null_limits=False):
            merged.setdefault((found.column, found.rule), _Merged(found)).add(found, len(frame))
        for name in limits:
            nulls[name] += int(frame[name].isna().sum())
        rows += len(frame)
    failures = [m.failure() for m in merged.values()]
    failures += [Failure(snapshot, name, f"max_null_fraction<={limit}", nulls[name], [null_share(nulls[name], rows)])
                 for name, limit in limits.items() if rows and nulls[name] / rows > limit]
    return rows, sorted(failures, key=_order(contract, columns))


def _frames(table: Any, chunk_rows: int) -> Iterable[pd.DataFrame]:
    if table.rows:
        yield from table.chunks(chunk_rows)
        return
    import pyarrow.parquet as pq  # no batches in a file without rows: check its header

    yield table.typed(pq.read_schema(table.files[0]).empty_table().to_pandas(), table.columns)


def _order(contract: Contract, columns: list[str]) -> Callable[[Failure], tuple[int, int, int]]:
    """Sort key putting merged failures where pandera's lazy validation lists them."""
    from gitml.data.contract import value_schema

    schema = value_schema(contract, set(columns))
    position = {name: i for i, name in enumerate(schema.columns)}
    checks = {name: [check.name for check in column.checks] for name, column in schema.columns.items()}

    def key(found: Failure) -> tuple[int, int, int]:
        if found.rule in SCHEMA_RULES:
            return (0, 0, 0)  # first, in the order the first chunk found them
        names = checks.get(found.column, [])
        check = -1 if found.rule == "not_nullable" else names.index(found.rule) if found.rule in names else len(names)
        return (2 if _column_level(found.rule) else 1, position.get(found.column, len(position)), check)

    return key
