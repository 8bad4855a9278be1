"""Small range checks shared by the config rules; each returns ``(key, problem)`` pairs."""

from __future__ import annotations

from typing import Any

Problems = list[tuple[str, str]]
# The splits data/split.py writes (split_frame's keys); package and gate rules name one of them.
SPLIT_NAMES = ("train", "val", "test")


def at_least(key: str, value: Any, low: float, null_ok: bool = False) -> Problems:
    """``value >= low`` (or None when ``null_ok``); NaN fails."""
    if value is None and null_ok:
        return []
    if value is None or not value >= low:
        return [(key, f"must be at least {low:g}{' (or null)' if null_ok else ''}, got {value}.")]
    return []


def positive(key: str, value: Any, null_ok: bool = False) -> Problems:
    """``value > 0`` (or None when ``null_ok``); NaN fails."""
    if value is None and null_ok:
        return []
    if value is None or not value > 0:
        return [(key, f"must be positive{' (or null)' if null_ok else ''}, got {value}.")]
    return []


def share(key: str, value: float, exclusive: bool = True) -> Problems:
    """A probability or share: in (0, 1), or in [0, 1] when not ``exclusive``; NaN fails."""
    inside = 0.0 < value < 1.0 if exclusive else 0.0 <= value <= 1.0
    if inside:
        return []
    return [(key, f"must be between 0 and 1{' (exclusive)' if exclusive else ''}, got {value}.")]
