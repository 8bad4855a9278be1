"""What ``gitml drift check`` verifies before any detector sees the window.

A detector answers "did the distribution move?"; it cannot tell a moved distribution from
a broken log. Two checks against the bundle's signature come first, and each failure is
its own verdict (exit 2), never drift:

- **Schema** (:func:`schema_change`): every file holding rows of the window has each
  input column of the signature, with a type of the right kind, and no other input
  column. A renamed column shows as one missing and one new column. Files are compared
  one by one, as stored: reading them into one frame would fill a column that exists in
  older files only with missing values, which a detector reads as drift in that column.
- **Values** (:func:`value_quality`): per feature, the share of missing values and of
  infinities. Missing values the signature allows (``nullable``, from the data contract)
  are reported, not counted; infinities are never valid. A feature whose invalid share
  exceeds ``drift.max_invalid_share`` stops the check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from gitml.package.logschema import NOT_INPUTS, PROBA_PREFIX

if TYPE_CHECKING:
    import pandas as pd

    from gitml.package.signature import Signature

# The kinds of Arrow type each signature dtype may be stored as; an all-null column ("null")
# fits any and is counted by the value check. `int` and `bool` accept float64: the server
# writes an integer beyond int64 that way rather than lose the row.
# datetime: the server logs a validated date as epoch seconds
ACCEPTED = {"float": {"number"}, "int": {"number"}, "bool": {"bool", "number"}, "category": {"text"},
            "datetime": {"number"}}
TEXT_TYPES = frozenset({"string", "large_string", "utf8", "large_utf8", "string_view"})
NUMBER_TYPES = frozenset({"halffloat", "float", "double", "int8", "int16", "int32", "int64",
                          "uint8", "uint16", "uint32", "uint64"})


@dataclass
class SchemaChange:
    """How the window's files differ from the bundle's signature: every difference, by column,
    with the files (relative to the log root) that show it."""

    missing: dict[str, list[str]] = field(default_factory=dict)  # signature input -> files without it
    new: dict[str, list[str]] = field(default_factory=dict)  # column no input, metadata or output is called
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)  # input -> {"expected", "found", "files"}

    @property
    def reasons(self) -> list[str]:
        out = []
        if self.missing:
            out.append("schema change: signature column(s) missing from the request log: "
                       + "; ".join(f"{name} {_files(files)}" for name, files in self.missing.items()))
        if self.new:
            out.append("schema change: new column(s) in the request log, not in the signature: "
                       + "; ".join(f"{name} {_files(files)}" for name, files in self.new.items()))
        if self.missing and self.new:
            out.append(f"schema change: a renamed column shows as one of each "
                       f"({', '.join(self.missing)} -> {', '.join(self.new)}?)")
        out += [f"schema change: column {name} is stored as {c['found']} in the request log, the signature "
                f"says {c['expected']} {_files(c['files'])}" for name, c in self.changed.items()]
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FeatureQuality:
    """One feature's missing and infinite values in the window, as shares of its rows."""

    name: str
    nullable: bool  # the signature (data contract) lets it be missing
    missing: float
    infinite: float

    @property
    def invalid(self) -> float:
        """The share that counts against ``drift.max_invalid_share``."""
        return self.infinite + (0.0 if self.nullable else self.missing)

    def describe(self) -> str:
        parts = [f"{self.missing:.1%} missing" + (" (allowed: nullable)" if self.nullable else "")]
        if self.infinite:
            parts.append(f"{self.infinite:.1%} infinite")
        return f"{self.name}: {', '.join(parts)}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "invalid": self.invalid}


def schema_change(layouts: dict[tuple[tuple[str, str], ...], list[str]],
                  signature: Signature) -> SchemaChange | None:
    """Compare each file layout ``((name, Arrow type), ...)`` with the signature; None when all fit.

    Example:
        >>> change = schema_change(read_window("logs").layouts, bundle.signature)
        >>> list(change.missing), list(change.new)
        (['num_3'], ['num_3_v2'])
    """
    inputs = {c.name: c.dtype for c in signature.inputs}
    change = SchemaChange()
    for layout, files in layouts.items():
        columns = dict(layout)
        for name, dtype in inputs.items():
            if name not in columns:
                change.missing.setdefault(name, []).extend(files)
            elif _kind(columns[name]) not in ACCEPTED.get(dtype, set()) | {"null"}:
                entry = change.changed.setdefault(name, {"expected": dtype, "found": columns[name], "files": []})
                entry["files"].extend(files)
        for name in columns:
            if name not in inputs and name not in NOT_INPUTS and not name.startswith(PROBA_PREFIX):
                change.new.setdefault(name, []).extend(files)
    return change if change.missing or change.new or change.changed else None


def value_quality(frame: pd.DataFrame, signature: Signature,
                  schema: SchemaChange | None = None) -> list[FeatureQuality]:
    """Missing and infinite shares of each signature input in ``frame``.

    Columns ``schema`` finds missing from some file or stored as another type are left out:
    their gaps are the schema change, already reported, not missing values.

    Example:
        >>> [q.describe() for q in value_quality(window, bundle.signature) if q.invalid]
        ['num_3: 10.0% missing']
    """
    import numpy as np

    from gitml.monitor.encoding import float_rows

    skip = set(schema.missing) | set(schema.changed) if schema is not None else set()
    specs = [c for c in signature.inputs if c.name in frame.columns and c.name not in skip]
    if not len(frame):
        return [FeatureQuality(c.name, c.nullable, 0.0, 0.0) for c in specs]
    numeric = [c for c in specs if c.dtype != "category"]
    missing, infinite = {}, {}
    if numeric:
        values = float_rows(frame, [c.name for c in numeric])  # one row per column
        nan, inf = np.isnan(values).mean(axis=1), np.isinf(values).mean(axis=1)
        for j, spec in enumerate(numeric):
            missing[spec.name], infinite[spec.name] = float(nan[j]), float(inf[j])
    for spec in specs:
        if spec.dtype == "category":
            missing[spec.name], infinite[spec.name] = float(frame[spec.name].isna().mean()), 0.0
    return [FeatureQuality(c.name, c.nullable, missing[c.name], infinite[c.name])
            for c in specs]


def over_limit(quality: list[FeatureQuality], max_share: float) -> list[FeatureQuality]:
    """The features whose invalid share exceeds ``max_share`` (``drift.max_invalid_share``)."""
    return [q for q in quality if q.invalid > max_share]


def _kind(arrow_type: str) -> str:
    """``number``, ``bool``, ``text``, ``null`` or the type itself, for an Arrow type's text."""
    if arrow_type.startswith("dictionary<"):  # dictionary<values=string, indices=int32, ...>
        value = arrow_type.split("values=", 1)[-1].split(",", 1)[0]
        return "text" if value in TEXT_TYPES else arrow_type
    if arrow_type in TEXT_TYPES:
        return "text"
    if arrow_type in NUMBER_TYPES:
        return "number"
    return arrow_type  # "bool", "null", or a kind no input is stored as (timestamp, binary, ...)


def _files(files: list[str]) -> str:
    return f"({len(files)} file(s), e.g. {min(files)})"
