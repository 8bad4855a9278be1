"""The bundle signature: what a request must look like, from the data contract.

Validation answers with field-level problems (``{"field": ..., "message": ...}``) and never
echoes whole inputs back. Numeric values outside the training range are accepted (that
is drift, watched elsewhere); unknown categories, wrong types, missing or extra columns
and non-finite numbers (unless the column may be null) are refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitml.data.contract import Contract
from gitml.errors import InputValidationError

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "gitml.signature/v1"


def signature_from_contract(contract: Contract) -> dict[str, Any]:
    inputs = []
    for name, spec in contract.columns.items():
        entry: dict[str, Any] = {"name": name, "dtype": spec.dtype, "nullable": spec.max_null_fraction > 0}
        if spec.min is not None:
            entry["min"], entry["max"] = spec.min, spec.max
        if spec.categories is not None:
            entry["categories"] = list(spec.categories)
        inputs.append(entry)
    return {"format": FORMAT, "inputs": inputs,
            "outputs": {"label": contract.label, "classes": list(contract.classes)}}


def validate_input(frame: pd.DataFrame, signature: dict[str, Any], max_rows: int | None = None) -> pd.DataFrame:
    """Return ``frame`` coerced to the signature's types, or raise InputValidationError."""
    import numpy as np
    import pandas as pd

    problems: list[dict[str, str]] = []
    if len(frame) == 0:
        raise InputValidationError([{"field": "(batch)", "message": "empty batch: send at least one row"}])
    if max_rows is not None and len(frame) > max_rows:
        raise InputValidationError([{"field": "(batch)", "message": f"{len(frame)} rows exceed the maximum of {max_rows}"}])
    inputs = signature["inputs"]
    expected = [c["name"] for c in inputs]
    columns = [str(c) for c in frame.columns]
    for name in expected:
        if name not in columns:
            problems.append({"field": name, "message": "missing column"})
    extra = [c for c in columns if c not in expected]
    problems += [{"field": c, "message": "unexpected column (not in the signature)"} for c in extra[:20]]
    out: dict[str, Any] = {}
    for spec in inputs:
        name = spec["name"]
        if name not in columns:
            continue
        series = frame[name]
        if spec["dtype"] == "category":
            values = series.astype("object")
            bad_type = values.map(lambda v: v is not None and not isinstance(v, str) and not _is_nan(v))
            if bad_type.any():
                problems.append(_bad(name, bad_type, "expected a string category", frame))
            nulls = values.map(_is_nan)
            allowed = set(spec.get("categories") or [])
            unknown = ~values.isin(allowed) & ~nulls & ~bad_type
            if unknown.any():
                shown = ", ".join(repr(v) for v in list(dict.fromkeys(values[unknown]))[:3])
                problems.append({"field": name, "message": f"{int(unknown.sum())} value(s) outside the allowed "
                                 f"categories {sorted(allowed)} (e.g. {shown})"})
            if nulls.any() and not spec.get("nullable"):
                problems.append(_bad(name, nulls, "null not allowed", frame))
            out[name] = values.where(~nulls, None)
        else:
            numeric = pd.to_numeric(series.map(_strict_number), errors="coerce")
            not_number = numeric.isna() & ~series.map(_is_nan)
            if not_number.any():
                problems.append(_bad(name, not_number, f"expected a number ({spec['dtype']})", frame))
            values = numeric.to_numpy(dtype="float64")
            nonfinite = ~np.isfinite(values) & ~not_number.to_numpy()
            if nonfinite.any() and not spec.get("nullable"):
                problems.append(_bad(name, pd.Series(nonfinite), "NaN/inf not allowed", frame))
            if spec["dtype"] == "int":
                finite = np.isfinite(values)
                fractional = finite & (np.mod(values, 1, where=finite, out=np.zeros_like(values)) != 0)
                if fractional.any():
                    problems.append(_bad(name, pd.Series(fractional), "expected an integer", frame))
            out[name] = values
    if problems:
        raise InputValidationError(problems)
    return pd.DataFrame(out, index=frame.index)


def _strict_number(value: Any) -> Any:
    # Booleans are not numbers in a request; numeric strings are fine (CSV bodies).
    if isinstance(value, bool):
        return None
    return value


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _bad(name: str, mask: Any, message: str, frame: Any) -> dict[str, str]:
    import numpy as np

    rows = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(frame.index[r]) for r in rows[:5])
    return {"field": name, "message": f"{message} (row(s) {shown}{'...' if len(rows) > 5 else ''})"}
