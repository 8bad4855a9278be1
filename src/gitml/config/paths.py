"""``paths``: where each pipeline location lives, one key per location (``conf/paths/default.yaml``).

lightning-hydra-template's ``paths`` group: project layout is configuration, not code.
dvc.yaml names every location as ``${paths.<key>}``, and the api verbs take their default
paths from here, so moving a folder is one override (``gitml config compose
paths.bundle=artifacts/bundle``). Paths are relative to the repository root, where DVC
runs the stages and where the commands are meant to run.

Only the project's layout is here: files inside a bundle, ``dvc.lock`` and ``params.yaml``
itself are fixed parts of their formats.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class PathsConfig:
    """``paths.*``: every location the pipeline reads or writes, relative to the repository root."""

    external: str = "data/external"  # source files (data=csv|parquet) and declared contracts (input)
    raw: str = "data/raw"  # ingest: the raw snapshot
    production: str = "data/production"  # labelled production batches (input; retrain-pr adds to it)
    contract: str = "data/contract.json"  # validate: the effective data contract (kept in git)
    prepared: str = "data/prepared"  # prepare: splits and fitted preprocessing
    model: str = "models/model"  # train: the model folder
    checkpoints: str = "models/checkpoints"  # train: per-epoch checkpoints (not a DVC output)
    bundle: str = "models/bundle"  # package: the bundle the gate judges and promote registers
    reports: str = "reports"  # folder `gitml summary` reads the reports from
    validation: str = "reports/validation.json"  # validate: report (DVC metrics)
    data_summary: str = "reports/data.json"  # prepare: row counts (DVC metrics)
    train_summary: str = "reports/train.json"  # train: summary (DVC metrics)
    curves: str = "reports/plots/training.csv"  # train: per-epoch curves (DVC plots)
    metrics: str = "reports/metrics.json"  # evaluate: metrics (DVC metrics)
    eval_plots: str = "reports/plots/eval"  # evaluate: plot data folder (DVC plots)
    gate: str = "reports/gate.json"  # gate: the verdict promote, fetch and deploy check
    gate_md: str = "reports/gate.md"  # gate: the verdict as a markdown table
    drift: str = "reports/drift"  # drift check: report folder (retrain-pr commits it)
    pr_report: str = "reports/pr.md"  # gitml report: the pull-request comment
    pr_plots: str = "reports/pr-plots"  # gitml report: `dvc plots diff` HTML


# Folders that hold other keys by design: exempt from the overlap rule.
CONTAINERS = ("reports",)


def or_default(given: str | Path | None, default: str) -> Path:
    """``given`` when the caller named a path, else the configured ``default``."""
    return Path(given) if given is not None else Path(default)


def paths_from(raw: Any, model: str | None = None) -> PathsConfig:
    """The ``paths`` section of plain params data (another commit's params.yaml), defaults for the rest.

    Reads only the keys this version knows and keeps no other rule: a params.yaml older
    than the ``paths`` group yields the defaults, which are the layout it was built with.
    ``model``: that model's section of a multi-model file (the top level when it has none).
    """
    if model is not None and isinstance(raw, dict) and isinstance(raw.get("models"), dict):
        raw = raw["models"].get(model)
    section = raw.get("paths") if isinstance(raw, dict) else None
    if not isinstance(section, dict):
        return PathsConfig()
    known = {f.name for f in dataclasses.fields(PathsConfig)}
    return PathsConfig(**{k: str(v) for k, v in section.items() if k in known and isinstance(v, str) and v})


def paths_in_yaml(text: bytes | str | None, model: str | None = None) -> PathsConfig:
    """The ``paths`` of a params.yaml's text, read leniently: none or unreadable is the default layout.

    For commands that look at a project without running its pipeline (deploy, the chain
    check, another commit's layout); the pipeline's own commands validate the whole file.
    """
    import yaml

    try:
        return paths_from(yaml.safe_load(text) if text is not None else None, model)
    except (yaml.YAMLError, UnicodeDecodeError):
        return PathsConfig()


def paths_in(root: Path, model: str | None = None) -> PathsConfig:
    """The ``paths`` of ``root``'s params.yaml (see :func:`paths_in_yaml`)."""
    return paths_from(params_data(Path(root) / "params.yaml"), model)


def params_data(path: Path) -> Any:
    """A params file's data read leniently: None when it is missing or unreadable."""
    import yaml

    try:
        return yaml.safe_load(path.read_bytes()) if path.is_file() else None
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
