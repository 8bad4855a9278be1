"""Validate request rows against a bundle's :class:`~gitml.package.signature.Signature`.

Validation answers with field-level problems (``{"field": ..., "message": ...}``) and never
echoes whole inputs back. Numeric values outside the training range are accepted (that
is drift, watched elsewhere); unknown categories, wrong types, missing or extra columns,
numbers beyond float32's range and non-finite numbers (unless the column may be null) are
refused. A datetime input comes back as float64 seconds since 1970-01-01 UTC (NaN when
missing), an open category takes levels it does not list. Columns the data contract
excludes from the features (ids, dates in older contracts; the
signature's ``excluded``) are dropped unread, so a row may come as the source data has it.

Validation is vectorised: a column whose values are all plain numbers (or all strings, for
a category) is checked with one type scan and numpy; only a column holding something else
takes the per-value path that finds and names the bad rows. The model server hands its
parsed columns straight to :func:`validate_columns`; :func:`validate_input` does the same
for a DataFrame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gitml.errors import InputValidationError
from gitml.package.signature import FLOAT32_MAX, CompiledSignature, InputColumn, Signature
from gitml.package.values import as_float, clip, is_null

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MAX_EXTRA, MAX_ROWS_SHOWN = 20, 5


def validate_input(frame: pd.DataFrame, signature: Signature | CompiledSignature,
                   max_rows: int | None = None) -> pd.DataFrame:
    """Return ``frame`` coerced to the signature's types, or raise InputValidationError.

    Numeric columns come back as float64 (NaN for a missing value), categories as objects
    (None for a missing value), in signature order, on ``frame``'s index. Row numbers in
    the problems are ``frame``'s index labels.

    Example:
        >>> clean = validate_input(pd.DataFrame({"x": [1.5]}), signature)
    """
    import numpy as np
    import pandas as pd

    check_batch(len(frame), max_rows)
    sig = CompiledSignature.of(signature)
    ignored = ignored_columns(map(str, frame.columns), sig)
    if ignored:
        frame = frame.loc[:, [str(c) not in sig.ignored for c in frame.columns]]
    if sig.all_numeric and tuple(map(str, frame.columns)) == sig.names and \
            all(dtype.kind in "fiu" for dtype in frame.dtypes):
        matrix = frame.to_numpy(dtype=np.float64)
        if sig.matrix_ok(matrix):
            return pd.DataFrame(matrix, columns=sig.columns, index=frame.index, copy=False)
    columns: dict[str, Any] = {}
    for position, name in enumerate(frame.columns):
        key = str(name)
        if key not in columns:
            columns[key] = frame.iloc[:, position].to_numpy()
    return validate_columns(columns, sig, n_rows=len(frame), index=frame.index)


def validate_rows(rows: Sequence[Sequence[Any]], names: Sequence[str],
                  signature: Signature | CompiledSignature, max_rows: int | None = None,
                  *, no_booleans: bool = False) -> pd.DataFrame:
    """Validate row-major values (each row one value per name, in ``names`` order).

    The parsers of the model server call this for ``dataframe_split`` and list
    ``instances``; the caller has checked that every row has ``len(names)`` values.
    ``no_booleans``: the caller knows no value is a bool (a JSON body without a
    true/false literal), so the one thing numpy would silently take as a number cannot
    occur and the per-value type scan is skipped.
    """
    import itertools

    import numpy as np
    import pandas as pd

    sig = CompiledSignature.of(signature)
    check_batch(len(rows), max_rows)
    if sig.all_numeric and tuple(names) == sig.names and (
            no_booleans or set(map(type, itertools.chain.from_iterable(rows))) <= {float, int}):
        # Without booleans, what numpy takes is what the per-value path takes (numbers,
        # numeric text, None as NaN); the rules then run on the whole matrix at once.
        try:
            matrix = np.array(rows, dtype=np.float64)
        except (OverflowError, ValueError, TypeError):
            matrix = None
        if matrix is not None and sig.matrix_ok(matrix):
            return pd.DataFrame(matrix, columns=sig.columns, copy=False)
    columns: dict[str, Any] = {}
    for name, values in zip(names, zip(*rows, strict=True) if rows else (), strict=False):
        columns.setdefault(str(name), list(values))
    return validate_columns(columns, sig, n_rows=len(rows))


def ignored_columns(names: Any, signature: Signature | CompiledSignature) -> list[str]:
    """The names among ``names`` that validation drops unread (the signature's excluded columns)."""
    sig = CompiledSignature.of(signature)
    return [n for n in names if n in sig.ignored] if sig.ignored else []


def check_batch(n_rows: int, max_rows: int | None = None) -> None:
    """Refuse an empty batch or one over ``max_rows``."""
    if n_rows == 0:
        raise InputValidationError([{"field": "(batch)", "message": "empty batch: send at least one row"}])
    if max_rows is not None and n_rows > max_rows:
        raise InputValidationError([{"field": "(batch)", "message": f"{n_rows} rows exceed the maximum of {max_rows}"}])


def validate_columns(columns: Mapping[str, Any], signature: Signature | CompiledSignature,
                     n_rows: int | None = None, max_rows: int | None = None, index: Any = None) -> pd.DataFrame:
    """Validate columns given as name -> values (list, tuple or numpy array), all one length.

    The fast path of the model server: no DataFrame is built until the values are clean.
    Raises InputValidationError with every problem found.
    """
    import numpy as np
    import pandas as pd

    sig = CompiledSignature.of(signature)
    if n_rows is None:
        n_rows = len(next(iter(columns.values()))) if columns else 0
    check_batch(n_rows, max_rows)
    if sig.ignored and not sig.ignored.isdisjoint(columns):
        columns = {name: values for name, values in columns.items() if name not in sig.ignored}
    if sig.all_numeric and len(columns) == len(sig.names) and columns.keys() == sig.name_set:
        matrix = _numeric_matrix([columns[name] for name in sig.names], n_rows)
        if matrix is not None and sig.matrix_ok(matrix):
            return pd.DataFrame(matrix, columns=sig.columns, index=index, copy=False)
    problems: list[dict[str, str]] = [{"field": name, "message": "missing column"}
                                      for name in sig.names if name not in columns]
    extra = [c for c in columns if c not in sig.name_set]
    problems += [{"field": clip(c), "message": "unexpected column (not in the signature)"} for c in extra[:MAX_EXTRA]]
    if len(extra) > MAX_EXTRA:
        problems.append({"field": "(columns)", "message": f"{len(extra) - MAX_EXTRA} more unexpected column(s)"})
    labels = _RowLabels(index)
    out: list[Any] = []
    for spec in sig.inputs:
        name = spec.name
        if name not in columns:
            continue
        values = columns[name]
        if len(values) != n_rows:
            problems.append({"field": name, "message": f"{len(values)} value(s), expected {n_rows} (one per row)"})
            continue
        if spec.dtype == "category":
            out.append(_category(name, values, spec, sig.allowed[name], problems, labels))
        elif spec.dtype == "datetime":
            out.append(_datetime(name, values, spec, problems, labels))
        else:
            out.append(_numeric(name, values, spec, problems, labels))
    if problems:
        raise InputValidationError(problems)
    if sig.all_numeric:
        matrix = out[0].reshape(-1, 1) if len(out) == 1 else np.column_stack(out)
        return pd.DataFrame(matrix, columns=sig.columns, index=index, copy=False)
    return pd.DataFrame(dict(zip(sig.names, out, strict=True)), index=index, copy=False)


# ------------------------------------------------------------------ columns


def _numeric_matrix(values: list[Any], n_rows: int) -> np.ndarray | None:
    """All columns as one float64 matrix when they are plain numbers of one length, else None."""
    import itertools

    import numpy as np

    if any(len(v) != n_rows for v in values):
        return None
    if all(isinstance(v, np.ndarray) and v.dtype.kind in "fiu" for v in values):
        # Stacked as rows, then transposed: each column stays contiguous, as a frame keeps it.
        return np.stack(values).astype(np.float64, copy=False).T
    if any(isinstance(v, np.ndarray) for v in values):
        return None
    if not set(map(type, itertools.chain.from_iterable(values))) <= {float, int}:
        return None
    try:
        return np.array(values, dtype=np.float64).T
    except (OverflowError, ValueError):
        return None


def _is_integral(values: np.ndarray) -> np.ndarray:
    import numpy as np

    return values == np.round(values)


def _is_boolean(values: np.ndarray) -> np.ndarray:
    return (values == 0.0) | (values == 1.0)


def _numeric(name: str, values: Any, spec: InputColumn, problems: list[dict[str, str]],
             labels: _RowLabels) -> np.ndarray:
    import numpy as np

    dtype = spec.dtype
    numbers, bad = as_float(values, dtype == "bool")
    if bad is not None and bad.any():
        problems.append(labels.problem(name, bad, "expected a boolean (true/false or 0/1)" if dtype == "bool"
                                       else f"expected a number ({dtype})"))
    finite = np.isfinite(numbers)
    if not spec.nullable and not finite.all():
        nonfinite = ~finite if bad is None else ~finite & ~bad
        if nonfinite.any():
            problems.append(labels.problem(name, nonfinite, "NaN/inf not allowed"))
    huge = finite & (np.abs(np.where(finite, numbers, 0.0)) > FLOAT32_MAX)
    if huge.any():
        problems.append(labels.problem(name, huge, f"outside the model's float32 range (|x| <= {FLOAT32_MAX:.4g})"))
    if dtype in ("int", "bool") and finite.any():
        safe = np.where(finite, numbers, 0.0)
        wrong = ~(_is_integral(safe) if dtype == "int" else _is_boolean(safe))
        if wrong.any():
            problems.append(labels.problem(
                name, wrong, "expected an integer" if dtype == "int" else "expected a boolean (true/false or 0/1)"))
    return numbers


def _category(name: str, values: Any, spec: InputColumn, allowed: frozenset[str],
              problems: list[dict[str, str]], labels: _RowLabels) -> np.ndarray:
    import numpy as np

    if isinstance(values, np.ndarray):
        values = values.tolist()
    types = set(map(type, values))
    if types == {str}:
        nulls = bad_type = None
        clean = values
    else:
        clean = [v if isinstance(v, str) else None for v in values]
        nulls = np.fromiter((is_null(v) for v in values), dtype=bool, count=len(values))
        bad_type = np.fromiter((c is None for c in clean), dtype=bool, count=len(values)) & ~nulls
        if bad_type.any():
            problems.append(labels.problem(name, bad_type, "expected a string category"))
        if nulls.any() and not spec.nullable:
            problems.append(labels.problem(name, nulls, "null not allowed"))
    unknown = [] if spec.open else [v for v in clean if v is not None and v not in allowed]
    if unknown:
        shown = ", ".join(clip(repr(v)) for v in list(dict.fromkeys(unknown))[:3])
        listed = sorted(allowed)
        listed_text = str(listed[:20])[:-1] + (", ...]" if len(listed) > 20 else "]")
        problems.append({"field": name, "message": f"{len(unknown)} value(s) outside the allowed "
                         f"categories {listed_text} (e.g. {shown})"})
    out = np.empty(len(clean), dtype=object)
    out[:] = clean
    return out


def _datetime(name: str, values: Any, spec: InputColumn, problems: list[dict[str, str]],
              labels: _RowLabels) -> np.ndarray:
    from gitml.data.dates import request_dates

    seconds, bad, missing = request_dates(values)
    if bad.any():
        problems.append(labels.problem(name, bad, "expected a date (ISO 8601 text, e.g. 2024-05-31 or "
                                       "2024-05-31T14:00:00Z; years 1678-2261)"))
    if missing.any() and not spec.nullable:
        problems.append(labels.problem(name, missing, "null not allowed"))
    return seconds


class _RowLabels:
    """Names rows in problems: the frame's index labels, or positions."""

    def __init__(self, index: Any):
        self.index = index

    def problem(self, name: str, mask: Any, message: str) -> dict[str, str]:
        import numpy as np

        rows = np.flatnonzero(np.asarray(mask))
        shown = rows[:MAX_ROWS_SHOWN].tolist()
        if self.index is not None:
            shown = [clip(str(self.index[r]), 20) for r in shown]
        text = ", ".join(str(r) for r in shown)
        return {"field": name, "message": f"{message} (row(s) {text}{'...' if len(rows) > MAX_ROWS_SHOWN else ''})"}
