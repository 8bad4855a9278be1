"""``drift.*`` for one check: from the params file (or the defaults), the command line on top, validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitml.config.schema import DriftConfig
from gitml.errors import ConfigError


def load_drift_config(
    params_file: str | Path | None = None, *, detector: str | None = None,
    window_rows: int | None = None, window_hours: float | None = None, p_val: float | None = None,
) -> DriftConfig:
    """``drift.*`` from ``params_file`` (default: ./params.yaml if present, else the defaults),
    with the command-line overrides applied and checked."""
    import dataclasses

    from gitml.config.params import load_params_or_defaults
    from gitml.config.schema import DetectorKind

    cfg = load_params_or_defaults(params_file).drift
    changes: dict[str, Any] = {}
    if detector is not None:
        allowed = [k.value for k in DetectorKind]
        if detector not in allowed:
            raise ConfigError("--detector", "drift.detector",
                              f"unknown detector {detector!r}. Allowed: {', '.join(allowed)}.")
        changes["detector"] = DetectorKind(detector)
    overrides = {"window_rows": window_rows, "window_hours": window_hours, "p_val": p_val}
    changes.update({k: v for k, v in overrides.items() if v is not None})
    cfg = dataclasses.replace(cfg, **changes)
    validate_drift_config(cfg)
    return cfg


def validate_drift_config(cfg: DriftConfig, source: str = "drift settings") -> None:
    """Rules the schema's types cannot express (:func:`gitml.config.rules.drift_problems`); every failure is named."""
    from gitml.config.rules import drift_problems

    problems = drift_problems(cfg)
    if problems:
        raise ConfigError.of(source, problems)


# ------------------------------------------------------------------------- inputs
