"""The data contract: a schema every snapshot must satisfy, inferred or declared.

A contract names each feature column with its dtype (``int``, ``float``, ``bool``,
``category`` or ``datetime``), its allowed range, categories or earliest date and a null
limit, plus the label column and its classes. A category column marked ``open`` lists its
frequent levels only and takes any other (the preprocessing maps it to an "other" level).
Columns that are checked but are not model features (ids, and dates in contracts written
before dates were features) sit under ``excluded`` with their kind and the reason. It is
plain YAML/JSON so it can be reviewed in a pull request, and it becomes the serving
signature later. Checks run through pandera and report every failure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.data.checks import Failure as Failure
from gitml.data.checks import describe
from gitml.data.dates import as_datetimes as as_datetimes
from gitml.data.dates import as_datetimes_scalar as as_datetimes_scalar
from gitml.data.task import check_task, task_of_classes
from gitml.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

DTYPES = ("int", "float", "bool", "category", "datetime")
EXCLUDED_KINDS = ("datetime", "id")


@dataclass
class ColumnSpec:
    dtype: str
    min: float | str | None = None  # datetime: the earliest date allowed (ISO); later dates always pass
    max: float | None = None
    categories: list[str] | None = None
    max_null_fraction: float = 0.0
    open: bool = False  # category: levels beyond ``categories`` are allowed (read as "other")


@dataclass
class ExcludedColumn:
    """A column checked by validation but kept out of the model features, with the reason."""

    dtype: str  # one of EXCLUDED_KINDS
    reason: str
    min: str | None = None  # datetime: the earliest date allowed (ISO); later dates always pass
    max_null_fraction: float = 0.0


@dataclass
class Contract:
    """``task``: binary, multiclass or regression (a regression label lists no classes);
    empty means "from the classes" (a contract written before tasks existed)."""

    label: str
    classes: list[Any]
    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    excluded: dict[str, ExcludedColumn] = field(default_factory=dict)
    task: str = ""

    def __post_init__(self) -> None:
        self.task = self.task or task_of_classes(self.classes)

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    def with_task(self, task: str | None, source: str) -> Contract:
        """This contract for ``task`` (``data.task``; None keeps its own), or a ConfigError naming the key."""
        if task is None or task == self.task:
            return self
        check_task(task, self.classes, self.label, source)
        return dataclasses.replace(self, task=task, classes=[] if task == "regression" else self.classes)

    def to_dict(self) -> dict[str, Any]:
        label: dict[str, Any] = {"column": self.label, "task": self.task}
        if not self.regression:
            label["classes"] = list(self.classes)
        data: dict[str, Any] = {
            "version": 1,
            "label": label,
            "columns": {name: _written(spec) for name, spec in self.columns.items()},
        }
        if self.excluded:  # absent when empty, so contracts without such columns read as before
            data["excluded"] = {
                name: {k: v for k, v in asdict(spec).items() if v is not None}
                for name, spec in self.excluded.items()
            }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> Contract:
        try:
            label = data["label"]
            columns = {}
            for name, spec in (data.get("columns") or {}).items():
                if spec.get("dtype") not in DTYPES:
                    raise ConfigError(
                        source, f"columns.{name}.dtype",
                        f"unknown dtype {spec.get('dtype')!r}. Allowed: {', '.join(DTYPES)}.",
                    )
                if spec.get("min") is not None and spec["dtype"] == "datetime":
                    spec = {**spec, "min": str(spec["min"])}  # YAML reads an unquoted 2021-01-01 as a date
                columns[str(name)] = ColumnSpec(**spec)
            excluded = {str(name): _excluded(name, spec, source)
                        for name, spec in (data.get("excluded") or {}).items()}
            task = str(label.get("task") or "")
            classes = [] if task == "regression" else list(label["classes"])
            if task:
                check_task(task, classes, str(label["column"]), source, "label.task")
            return cls(label=str(label["column"]), classes=classes, columns=columns, excluded=excluded, task=task)
        except ConfigError:
            raise
        except (KeyError, TypeError) as exc:
            raise ConfigError(source, None, f"not a valid data contract ({exc}).") from exc


def _written(spec: ColumnSpec) -> dict[str, Any]:
    # Absent when unset: a contract without open columns is written byte for byte as before.
    return {k: v for k, v in asdict(spec).items() if v is not None and not (k == "open" and not v)}


def _excluded(name: str, spec: dict[str, Any], source: str) -> ExcludedColumn:
    if spec.get("dtype") not in EXCLUDED_KINDS:
        raise ConfigError(
            source, f"excluded.{name}.dtype",
            f"unknown kind {spec.get('dtype')!r}. Allowed: {', '.join(EXCLUDED_KINDS)}.",
        )
    spec = {"reason": "declared", **spec}
    if spec.get("min") is not None:
        spec["min"] = str(spec["min"])  # YAML reads an unquoted 2021-01-01 as a date
    return ExcludedColumn(**spec)


def load_contract(path: str | Path) -> Contract:
    """Read a declared contract from YAML or JSON."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), None, "declared data contract not found (data.schema.path).")
    return Contract.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, str(path))


def infer_contract(frame: pd.DataFrame, label: str, range_margin: float = 0.25,
                   max_null_fraction: float = 0.0, **options: Any) -> Contract:
    """Infer a contract from a trusted snapshot (see :func:`gitml.data.infer.infer_contract`)."""
    from gitml.data.infer import infer_contract as infer

    return infer(frame, label, range_margin, max_null_fraction, **options)


def check_frame(frame: pd.DataFrame, contract: Contract, snapshot: str, null_limits: bool = True) -> list[Failure]:
    """Check one snapshot against the contract; return every failure (empty when valid).

    ``null_limits=False`` leaves the null shares out: a chunk's share is not the file's
    (``gitml.data.checks`` counts nulls over the chunks and judges the file).
    """
    import pandera.pandas as pa

    failures: list[Failure] = []
    present = set(frame.columns)
    expected = [*contract.columns, *contract.excluded, contract.label]
    for name in expected:
        if name not in present:
            failures.append(Failure(snapshot, name, "column_present", len(frame), ["<missing>"]))
    for name in frame.columns:
        if name not in expected:
            failures.append(Failure(snapshot, str(name), "column_declared", len(frame), ["<unexpected>"]))
    try:
        value_schema(contract, present, null_limits).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases: pd.DataFrame = errors.failure_cases
        for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
            examples = [e.item() if hasattr(e, "item") else e for e in group["failure_case"].head(3)]
            failures.append(describe(frame, snapshot, str(column), str(check), len(group), examples))
    return failures


def value_schema(contract: Contract, present: set[Any], null_limits: bool = True) -> Any:
    """The pandera schema of the contract's ``present`` columns (their checks, in the order pandera runs them)."""
    import pandera.pandas as pa

    checked = {name: _column_schema(spec, name, pa, null_limits)
               for name, spec in contract.columns.items() if name in present}
    checked |= {name: _excluded_schema(spec, pa, null_limits)
                for name, spec in contract.excluded.items() if name in present}
    if contract.label in present and contract.regression:
        checked[contract.label] = pa.Column(None, checks=[
            pa.Check(_is_numeric, element_wise=False, name="dtype_numeric_label"),
            pa.Check(_finite, name="label_finite")], nullable=False)
    elif contract.label in present:
        checked[contract.label] = pa.Column(
            None, checks=[_isin(contract.classes, "label_in_classes", pa)], nullable=False,
        )
    return pa.DataFrameSchema(checked, strict=False)


def _column_schema(spec: ColumnSpec, name: str, pa: Any, null_limits: bool = True) -> Any:
    checks = [_null_limit(spec.max_null_fraction, pa)] if null_limits else []
    if spec.dtype in ("int", "float"):
        if spec.min is not None and spec.max is not None:
            low, high = float(spec.min), spec.max
            checks.append(pa.Check(_in_range(low, high), name=f"in_range({low:g}, {high:g})"))
        checks.insert(0, pa.Check(_is_numeric, element_wise=False, name=f"dtype_{spec.dtype}"))
        if spec.dtype == "int":
            checks.insert(1, pa.Check(_is_integral, element_wise=False, name="integral_values"))
    elif spec.dtype == "bool":
        checks.insert(0, _isin([True, False], "dtype_bool", pa))
    elif spec.dtype == "datetime":
        checks += _date_checks(None if spec.min is None else str(spec.min), pa)
    elif not spec.open:  # an open column takes levels it does not list
        checks.insert(0, _isin(spec.categories or [], "allowed_categories", pa))
    return pa.Column(None, checks=checks, nullable=True)


def _excluded_schema(spec: ExcludedColumn, pa: Any, null_limits: bool = True) -> Any:
    checks = [_null_limit(spec.max_null_fraction, pa)] if null_limits else []
    if spec.dtype == "datetime":
        checks += _date_checks(spec.min, pa)
    return pa.Column(None, checks=checks, nullable=True)


def _date_checks(earliest: str | None, pa: Any) -> list[Any]:
    checks = [pa.Check(lambda s: s.isna() | as_datetimes(s).notna(), name="parses_as_datetime")]
    if earliest is not None:
        low = as_datetimes_scalar(earliest)
        checks.append(pa.Check(lambda s: s.isna() | ~(as_datetimes(s) < low), name=f"on_or_after({earliest})"))
    return checks


def _isin(values: list[Any], name: str, pa: Any) -> Any:
    # Compare as text too, so a label 1 read from CSV matches a class declared as "1".
    allowed = set(values) | {str(v) for v in values}
    return pa.Check(lambda s: s.isin(allowed), name=name)


def _in_range(low: float, high: float) -> Any:
    def check(series: Any) -> Any:
        if not _is_numeric(series):
            return True  # reported by the dtype check
        return series.isna() | ((series >= low) & (series <= high))

    return check


def _is_numeric(series: Any) -> bool:
    from pandas.api import types

    return bool(types.is_numeric_dtype(series) and not types.is_bool_dtype(series))


def _finite(series: Any) -> Any:
    import numpy as np

    if not _is_numeric(series):
        return True  # reported by the numeric check
    return np.isfinite(series.astype("float64"))


def _is_integral(series: Any) -> Any:
    from pandas.api import types

    if not types.is_numeric_dtype(series):
        return True  # reported by the dtype check
    values = series.dropna()
    return bool(((values % 1) == 0).all())


def _null_limit(limit: float, pa: Any) -> Any:
    def check(series: Any) -> bool:
        return bool(len(series) == 0 or series.isna().mean() <= limit)

    return pa.Check(check, element_wise=False, ignore_na=False, name=f"max_null_fraction<={limit}")

