"""The data contract: a schema every snapshot must satisfy, inferred or declared.

A contract names each feature column with its dtype (``int``, ``float``, ``bool`` or
``category``), its allowed range or categories and a null limit, plus the label column
and its classes. It is plain YAML/JSON so it can be reviewed in a pull request, and it
becomes the serving signature later. Checks run through pandera and report every failure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

DTYPES = ("int", "float", "bool", "category")


@dataclass
class ColumnSpec:
    dtype: str
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    max_null_fraction: float = 0.0


@dataclass
class Contract:
    label: str
    classes: list[Any]
    columns: dict[str, ColumnSpec] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "label": {"column": self.label, "classes": list(self.classes)},
            "columns": {
                name: {k: v for k, v in asdict(spec).items() if v is not None}
                for name, spec in self.columns.items()
            },
        }

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
                columns[str(name)] = ColumnSpec(**spec)
            return cls(label=str(label["column"]), classes=list(label["classes"]), columns=columns)
        except ConfigError:
            raise
        except (KeyError, TypeError) as exc:
            raise ConfigError(source, None, f"not a valid data contract ({exc}).") from exc


def load_contract(path: str | Path) -> Contract:
    """Read a declared contract from YAML or JSON."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), None, "declared data contract not found (data.schema.path).")
    return Contract.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, str(path))


def infer_contract(
    frame: pd.DataFrame, label: str, range_margin: float = 0.25,
    max_null_fraction: float = 0.0,
) -> Contract:
    """Infer a contract from a trusted snapshot; numeric ranges widened by ``range_margin``."""
    from pandas.api import types

    if label not in frame.columns:
        raise ConfigError("data", "data.target", f"label column '{label}' not in the snapshot.")
    columns: dict[str, ColumnSpec] = {}
    for name in frame.columns:
        if name == label:
            continue
        series = frame[name]
        if types.is_bool_dtype(series):
            spec = ColumnSpec("bool")
        elif types.is_numeric_dtype(series):
            low, high = float(series.min()), float(series.max())
            pad = (high - low) * range_margin
            spec = ColumnSpec("int" if types.is_integer_dtype(series) else "float", low - pad, high + pad)
        else:
            levels = sorted(str(v) for v in series.dropna().unique())
            spec = ColumnSpec("category", categories=levels)
        spec.max_null_fraction = max_null_fraction
        columns[str(name)] = spec
    classes = sorted(frame[label].dropna().unique().tolist())
    return Contract(label=label, classes=classes, columns=columns)


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


def infer_contract_file(source: str | Path, out: str | Path, label: str, range_margin: float = 0.25) -> Path:
    """Infer a contract from a trusted CSV/Parquet file or snapshot folder and write it as YAML to ``out``.

    Column names are snake_cased as ingest does, so the contract names what the pipeline sees.
    """
    import pandas as pd
    import yaml

    from gitml.data.snapshots import read_snapshots
    from gitml.data.sources import snake_case
    from gitml.utils.atomic import write_text

    source = Path(source)
    if source.is_dir():
        frame = read_snapshots(source)
    elif source.suffix == ".csv":
        frame = pd.read_csv(source)
    else:
        frame = pd.read_parquet(source)
    frame.columns = [snake_case(c) for c in frame.columns]
    contract = infer_contract(frame, snake_case(label), range_margin)
    return write_text(out, yaml.safe_dump(contract.to_dict(), sort_keys=False))


def check_frame(frame: pd.DataFrame, contract: Contract, snapshot: str) -> list[Failure]:
    """Check one snapshot against the contract; return every failure (empty when valid)."""
    import pandera.pandas as pa

    failures: list[Failure] = []
    present = set(frame.columns)
    expected = [*contract.columns, contract.label]
    for name in expected:
        if name not in present:
            failures.append(Failure(snapshot, name, "column_present", len(frame), ["<missing>"]))
    for name in frame.columns:
        if name not in expected:
            failures.append(Failure(snapshot, str(name), "column_declared", len(frame), ["<unexpected>"]))
    checked = {name: _column_schema(spec, name, pa) for name, spec in contract.columns.items() if name in present}
    if contract.label in present:
        checked[contract.label] = pa.Column(
            None, checks=[_isin(contract.classes, "label_in_classes", pa)], nullable=False,
        )
    schema = pa.DataFrameSchema(checked, strict=False)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases: pd.DataFrame = errors.failure_cases
        for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
            examples = [e.item() if hasattr(e, "item") else e for e in group["failure_case"].head(3)]
            failures.append(_describe(frame, snapshot, str(column), str(check), len(group), examples))
    return failures


def _describe(frame: Any, snapshot: str, column: str, rule: str, count: int, examples: list[Any]) -> Failure:
    """Column-level checks report a bare False; say what was actually found instead."""
    series = frame[column]
    if rule.startswith("dtype_"):
        bad = series.dropna()
        bad = bad[~bad.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))]
        found = [f"dtype {series.dtype}", *bad.head(2).tolist()]
        return Failure(snapshot, column, rule, len(bad) or len(series), found)
    if rule.startswith("max_null_fraction"):
        nulls = int(series.isna().sum())
        return Failure(snapshot, column, rule, nulls, [f"null fraction {nulls / max(len(series), 1):.3f}"])
    if rule == "integral_values":
        values = series.dropna()
        bad = values[(values % 1) != 0]
        return Failure(snapshot, column, rule, len(bad), bad.head(3).tolist())
    return Failure(snapshot, column, rule, count, examples)


def _column_schema(spec: ColumnSpec, name: str, pa: Any) -> Any:
    checks = [_null_limit(spec.max_null_fraction, pa)]
    if spec.dtype in ("int", "float"):
        if spec.min is not None and spec.max is not None:
            low, high = spec.min, spec.max
            checks.append(pa.Check(_in_range(low, high), name=f"in_range({low:g}, {high:g})"))
        checks.insert(0, pa.Check(_is_numeric, element_wise=False, name=f"dtype_{spec.dtype}"))
        if spec.dtype == "int":
            checks.insert(1, pa.Check(_is_integral, element_wise=False, name="integral_values"))
    elif spec.dtype == "bool":
        checks.insert(0, _isin([True, False], "dtype_bool", pa))
    else:
        checks.insert(0, _isin(spec.categories or [], "allowed_categories", pa))
    return pa.Column(None, checks=checks, nullable=True)


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


def _rule_name(check: str) -> str:
    # pandera names built-in checks like "in_range(0.0, 1.0)" or "isin([...])"; ours are named.
    return check if len(check) <= 80 else check[:77] + "..."
