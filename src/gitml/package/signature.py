"""The bundle signature: what a request must look like and what the model answers.

:class:`Signature` is built from the data contract when the bundle is packaged and read
back from ``signature.json`` (format ``gitml.signature/v1``) when it is loaded; everything
after that (the server, the drift check, retraining) works with the typed object.
A ``datetime`` input takes ISO 8601 text (or a typed timestamp) and validation hands it on
as float64 seconds since 1970-01-01 UTC, which the preprocessing expands into date parts;
an ``open`` category takes levels it does not list (the preprocessing reads them as
"(other)"). Both keys are written only when used, so other signatures read as before.
Columns the contract excludes from the features (ids, dates in older contracts) are recorded under
``excluded`` with their kind: a request may carry them (rows as the source data has them)
and validation drops them unread. The key is absent when there are none, and a bundle
written before it existed reads as having none.
:class:`CompiledSignature` is the same signature prepared once for the validators of
:mod:`gitml.package.validation` (names, allowed sets, numpy indexes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from gitml.errors import BundleError

if TYPE_CHECKING:
    import numpy as np

    from gitml.data.contract import Contract

FORMAT = "gitml.signature/v1"
DTYPES = ("int", "float", "bool", "category", "datetime")
NUMERIC = ("int", "float", "bool")
# Models compute in float32: a larger finite input overflows to inf inside the model and comes
# back as NaN probabilities with a meaningless argmax, so it is refused as out of range.
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class InputColumn:
    """One input column: its type, whether it may be null, its training range or levels."""

    name: str
    dtype: str  # one of DTYPES
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    open: bool = False  # category: levels beyond ``categories`` are taken (as "(other)")

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}
        if self.min is not None:
            entry["min"], entry["max"] = self.min, self.max
        if self.categories is not None:
            entry["categories"] = list(self.categories)
        if self.open:
            entry["open"] = True
        return entry


@dataclass(frozen=True)
class ExcludedInput:
    """A column a request may carry that the model does not read (the contract's ``excluded``)."""

    name: str
    kind: str  # the contract's kind: "datetime" or "id"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind}


@dataclass(frozen=True)
class Signature:
    """The inputs a request carries, in order, and what the model predicts: one of ``classes``
    (with a probability for each), or for the ``regression`` task a number."""

    inputs: tuple[InputColumn, ...]
    label: str | None
    classes: tuple[Any, ...]  # empty for regression
    excluded: tuple[ExcludedInput, ...] = ()
    task: str = ""  # binary, multiclass or regression; empty (signatures before tasks): from the classes

    def __post_init__(self) -> None:
        if not self.task:
            object.__setattr__(self, "task", "binary" if len(self.classes) == 2 else "multiclass")

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    @property
    def excluded_names(self) -> list[str]:
        return [c.name for c in self.excluded]

    @property
    def features(self) -> list[str]:
        return [c.name for c in self.inputs]

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.classes]

    @property
    def proba_columns(self) -> list[str]:
        """The column of each class's probability, in the request log and batch predictions (none for regression)."""
        from gitml.package.logschema import PROBA_PREFIX

        return [f"{PROBA_PREFIX}{c}" for c in self.class_names]

    @property
    def log_schema(self) -> tuple[tuple[tuple[str, str, bool], ...], tuple[str, ...]]:
        """What a request-log file's layout depends on: inputs (name, dtype, nullable) and class names."""
        return tuple((c.name, c.dtype, c.nullable) for c in self.inputs), tuple(self.class_names)

    @cached_property
    def compiled(self) -> CompiledSignature:
        return CompiledSignature.of(self)

    @classmethod
    def from_contract(cls, contract: Contract) -> Signature:
        inputs = tuple(
            InputColumn(name, spec.dtype, spec.max_null_fraction > 0, *_bounds(spec.min, spec.max, spec.dtype),
                        tuple(spec.categories) if spec.categories is not None else None, spec.open)
            for name, spec in contract.columns.items()
        )
        excluded = tuple(ExcludedInput(name, spec.dtype) for name, spec in contract.excluded.items()
                         if name not in contract.columns and name != contract.label)
        return cls(inputs, contract.label, tuple(contract.classes), excluded, contract.task)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "signature.json") -> Signature:
        """Parse ``signature.json``; a malformed one is a BundleError naming ``source``."""
        try:
            inputs = tuple(_column(c) for c in data["inputs"])
            outputs = data["outputs"]
            task = str(outputs.get("task") or "")
            classes = () if task == "regression" else tuple(outputs["classes"])
            label = outputs.get("label")
            excluded = tuple(ExcludedInput(str(c["name"]), str(c["kind"])) for c in data.get("excluded") or ())
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BundleError(source, [f"not a gitml signature ({type(exc).__name__}: {exc})"]) from exc
        if task not in ("", "binary", "multiclass", "regression"):
            raise BundleError(source, [f"outputs.task {task!r} is not binary, multiclass or regression"])
        return cls(inputs, None if label is None else str(label), classes, excluded, task)

    def to_dict(self) -> dict[str, Any]:
        outputs: dict[str, Any] = {"label": self.label, "task": self.task}
        if not self.regression:
            outputs["classes"] = list(self.classes)
        data: dict[str, Any] = {"format": FORMAT, "inputs": [c.to_dict() for c in self.inputs],
                                "outputs": outputs}
        if self.excluded:  # absent when empty: a bundle without such columns is byte for byte as before
            data["excluded"] = [c.to_dict() for c in self.excluded]
        return data


def _bounds(low: float | str | None, high: float | None, dtype: str) -> tuple[float | None, float | None]:
    # A date's earliest day checks the training data only: a request may carry any date.
    if dtype == "datetime" or low is None:
        return None, None
    return float(low), None if high is None else float(high)  # both floats, as an int column's are written


def _column(entry: Mapping[str, Any]) -> InputColumn:
    dtype = str(entry["dtype"])
    if dtype not in DTYPES:
        raise ValueError(f"column {entry['name']!r} has dtype {dtype!r}, not one of {', '.join(DTYPES)}")
    categories = entry.get("categories")
    return InputColumn(
        str(entry["name"]), dtype, bool(entry.get("nullable")),
        None if entry.get("min") is None else float(entry["min"]),
        None if entry.get("max") is None else float(entry["max"]),
        None if categories is None else tuple(str(v) for v in categories), bool(entry.get("open")),
    )


@dataclass(frozen=True)
class CompiledSignature:
    """A signature prepared once for repeated validation (names, allowed sets, index)."""

    inputs: tuple[InputColumn, ...]
    names: tuple[str, ...]
    name_set: frozenset[str]
    ignored: frozenset[str]  # excluded columns: taken in a request and dropped unread
    allowed: dict[str, frozenset[str]]
    all_numeric: bool
    columns: Any  # pandas Index of the names: building a frame on it is cheap
    strict: Any  # positions of the numeric columns that may not be null (numpy index)
    integral: Any  # positions of int columns
    boolean: Any  # positions of bool columns

    @classmethod
    def of(cls, signature: Signature | CompiledSignature) -> CompiledSignature:
        if isinstance(signature, CompiledSignature):
            return signature
        import numpy as np
        import pandas as pd

        inputs = signature.inputs
        names = tuple(c.name for c in inputs)
        allowed = {c.name: frozenset(c.categories or ()) for c in inputs if c.dtype == "category"}

        def where(test: Any) -> Any:
            return np.array([i for i, c in enumerate(inputs) if test(c)], dtype=np.intp)

        ignored = frozenset(signature.excluded_names) - frozenset(names)
        all_numeric = not allowed and all(c.dtype != "datetime" for c in inputs)
        return cls(inputs, names, frozenset(names), ignored, allowed, all_numeric, pd.Index(names),
                   where(lambda c: not c.nullable), where(lambda c: c.dtype == "int"),
                   where(lambda c: c.dtype == "bool"))

    def matrix_ok(self, matrix: np.ndarray) -> bool:
        """Does a float64 matrix in signature column order pass every numeric rule?"""
        import numpy as np

        if matrix.ndim != 2 or matrix.shape[1] != len(self.names):
            return False
        finite = np.isfinite(matrix)
        if not finite[:, self.strict].all() or (np.abs(matrix[finite]) > FLOAT32_MAX).any():
            return False
        for cols, integral in ((self.integral, True), (self.boolean, False)):
            if len(cols):
                part = np.where(finite[:, cols], matrix[:, cols], 0.0)
                if not (part == np.round(part) if integral else (part == 0.0) | (part == 1.0)).all():
                    return False
        return True
