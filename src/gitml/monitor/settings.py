"""``drift.*`` for one check: from the params file (or the defaults), the command line on top, validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitml.config.schema import DriftConfig
from gitml.errors import ConfigError


def load_drift_config(
    params_file: str | Path | None = None, *, detector: str | None = None,
    window_rows: int | None = None, window_hours: float | None = None, p_val: float | None = None,
    model: str | None = None,
) -> DriftConfig:
    """``drift.*`` from ``params_file`` (default: ./params.yaml if present, else the defaults),
    with the command-line overrides applied and checked. ``model``: that model's (``models.NAME.drift``)."""
    import dataclasses

    from gitml.config.params import load_params_or_defaults
    from gitml.config.schema import DetectorKind

    cfg = load_params_or_defaults(params_file, model).drift
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


def model_log_dir(params_file: str | Path | None, model: str | None) -> str:
    """Where the server writes ``model``'s request and feedback logs: ``serve.log_dir``, and in a
    repository of several models ``serve.log_dir/NAME`` (a server given named models writes each
    under its name: serve/state.py). ``serve.log_dir`` is the shared top level's, as the server reads it.
    """
    from gitml.config.models import declared_in
    from gitml.config.params import PARAMS_FILE, load_sections
    from gitml.utils.storage import join, location

    root = load_sections(params_file, ["serve"]).serve.log_dir
    if model is None or model not in declared_in(Path(params_file or PARAMS_FILE)):
        return str(root)
    return str(join(location(root, "serve.log_dir"), model))


# ------------------------------------------------------------------------- inputs
