"""Which overrides turn ``conf/`` into a given params.yaml (what ``dvc exp run -S`` leaves).

DVC's Hydra integration recomposes params.yaml with the ``-S`` overrides and keeps no record
of them (dvc/repo/experiments/queue/base.py ``_update_params`` dumps the composed config,
without our header): the file then differs from what ``conf/`` composes to. The overrides are
recovered here, group choices first (``model=random_forest``), then one ``key=value`` per
leaf that still differs, and accepted only if composing ``conf/`` with them gives the file's
values exactly: a key conf/ does not have, or a value the schema refuses, explains nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gitml.errors import ConfigError


def explain_overrides(conf_dir: str | Path, actual: dict[str, Any], base: dict[str, Any]) -> list[str] | None:
    """Overrides with ``compose(conf_dir, overrides) == actual``, or None when there are none.

    ``base`` is what ``conf_dir`` composes to with no override. Two or three composes at most
    (each 0.5-3 s): group options are chosen by reading their files, not by composing each.

    Example:
        >>> explain_overrides("conf", yaml.safe_load(open("params.yaml")), base)  # doctest: +SKIP
        ['model=random_forest', 'trainer.epochs=5']
    """
    conf = Path(conf_dir)
    defaults = _default_choices(conf)
    choices = [f"{key}={option}" for key in base if key in actual and key in defaults
               and _count(base[key], actual[key]) > 0
               and (option := _best_option(conf / key, actual[key], defaults[key])) != defaults[key]]
    composed = _composed(conf, choices) if choices else base
    leaves = _leaf_changes(composed, actual) if composed is not None else None
    if leaves is None:
        return None
    overrides = choices + [f"{key}={_hydra_value(value)}" for key, value in leaves]
    if not overrides or (leaves and _composed(conf, overrides) != actual):
        return None
    return overrides


def _default_choices(conf: Path) -> dict[str, str]:
    """``{group: option}`` from the defaults list of ``conf/config.yaml``."""
    import yaml

    defaults = (yaml.safe_load((conf / "config.yaml").read_text(encoding="utf-8")) or {}).get("defaults") or []
    return {str(k): str(v) for entry in defaults if isinstance(entry, dict) for k, v in entry.items()
            if (conf / str(k)).is_dir()}


def _best_option(group: Path, actual: Any, default: str) -> str:
    """The option of ``group`` whose own values disagree least with ``actual`` (the default on a tie)."""
    import yaml

    scores = {}
    for path in sorted(group.glob("*.yaml")):
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(values, dict):
            values.pop("defaults", None)
            scores[path.stem] = _mismatches(values, actual)
    best = min(scores, key=lambda option: (scores[option], option != default), default=default)
    return default if scores.get(default) == scores.get(best) else best


def _mismatches(own: Any, actual: Any) -> int:
    """Leaves an option file sets that ``actual`` does not have (keys the file leaves out are not counted)."""
    if isinstance(own, dict):
        return sum(_mismatches(v, actual.get(k) if isinstance(actual, dict) else None) for k, v in own.items())
    return 0 if own == actual else 1


def _composed(conf: Path, overrides: Sequence[str]) -> dict[str, Any] | None:
    from gitml.config.compose import compose, to_plain

    try:
        return to_plain(compose(conf, overrides))
    except ConfigError:  # an option that does not compose alone (a required key) explains nothing
        return None


def _count(expected: Any, actual: Any) -> int:
    """Differing leaves; a key on one side only counts as many as it has leaves."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return sum(_count(expected.get(k), actual.get(k)) for k in {*expected, *actual})
    return 0 if expected == actual else 1


def _leaf_changes(expected: Any, actual: Any, prefix: str = "") -> list[tuple[str, Any]] | None:
    """(dotted key, new value) per differing leaf; None when a key is added or removed."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if set(expected) != set(actual):
            return None
        changes: list[tuple[str, Any]] = []
        for key in expected:
            inner = _leaf_changes(expected[key], actual[key], f"{prefix}{key}.")
            if inner is None:
                return None
            changes += inner
        return changes
    return [] if expected == actual else [(prefix.rstrip("."), actual)]


def _hydra_value(value: Any) -> str:
    """``value`` in Hydra's override grammar, keeping its type (a quoted '3' stays a string)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value), ensure_ascii=False)
