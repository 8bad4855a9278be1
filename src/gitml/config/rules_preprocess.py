"""Rules for ``data.preprocess`` the schema's types cannot express (see :mod:`gitml.config.rules`)."""

from __future__ import annotations

from gitml.config.checks import Problems, at_least
from gitml.config.schema import PreprocessConfig


def preprocess_problems(preprocess: PreprocessConfig) -> Problems:
    """Known, distinct date parts; a level cap of at least one."""
    from gitml.data.dates import DATE_PARTS

    problems: Problems = []
    parts = list(preprocess.datetime_parts)
    unknown = [p for p in parts if p not in DATE_PARTS]
    if unknown or not parts or len(set(parts)) != len(parts):
        problems.append(("data.preprocess.datetime_parts", f"needs distinct parts from {', '.join(DATE_PARTS)} "
                         f"(at least one), got {parts}."))
    problems += at_least("data.preprocess.max_levels", preprocess.max_levels, 1, null_ok=True)
    return problems
