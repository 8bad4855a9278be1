"""Read request values as numbers or text: the per-value rules the validators share.

A number may arrive as a JSON number, numeric text (CSV, or a JSON string) or, for a bool
column, true/false; a missing value as None, NaN, pandas' NA or an empty CSV field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MAX_TEXT = 40
_TRUE, _FALSE = ("true", "1", "1.0"), ("false", "0", "0.0")


def as_float(values: Any, booleans: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """float64 values (NaN where missing) and a mask of values that are not numbers."""
    import numpy as np

    if isinstance(values, np.ndarray):
        kind = values.dtype.kind
        if kind in "fiu":
            return values.astype(np.float64, copy=False), None
        if kind == "b":
            if booleans:
                return values.astype(np.float64), None
            return np.full(len(values), np.nan), np.ones(len(values), dtype=bool)
        if kind in "mM":  # datetimes would pass as their integer ticks
            return np.full(len(values), np.nan), np.ones(len(values), dtype=bool)
        values = values.tolist()
    types = set(map(type, values))
    if types <= {float, int} or types == {str}:
        # numbers, or numbers written as text (CSV); anything odd takes the per-value path
        try:
            return np.array(values, dtype=np.float64), None
        except (OverflowError, ValueError):
            pass
    return as_float_slow(values, booleans)


def as_float_slow(values: Sequence[Any], booleans: bool) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    out = np.empty(len(values), dtype=np.float64)
    bad = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        if isinstance(value, (bool, np.bool_)):
            out[i] = float(value) if booleans else np.nan
            bad[i] = not booleans
        elif isinstance(value, (int, float, np.integer, np.floating)):
            try:
                out[i] = float(value)
            except OverflowError:
                out[i] = np.inf if value > 0 else -np.inf
        elif isinstance(value, str):
            out[i], bad[i] = parse_number(value, booleans)
        else:
            out[i] = np.nan
            bad[i] = not is_null(value)
    return out, bad


def parse_number(text: str, booleans: bool) -> tuple[float, bool]:
    """A number written as text (CSV bodies): (value, is_bad). An empty field is missing."""
    stripped = text.strip()
    if not stripped:
        return float("nan"), False
    if booleans:
        lowered = stripped.lower()
        if lowered in _TRUE or lowered in _FALSE:
            return (1.0 if lowered in _TRUE else 0.0), False
    try:
        return float(stripped), False
    except ValueError:
        return float("nan"), True


def is_null(value: Any) -> bool:
    """None, a float NaN, or pandas' NA/NaT."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return type(value).__name__ in ("NAType", "NaTType")


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Shorten ``text`` for a message: a problem never echoes a whole input back."""
    text = str(text)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    # Lone surrogates (which Python's JSON parser lets through) cannot be encoded as UTF-8.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
