"""The verbs other Python code and tests import: short functions over the library.

Each verb loads configuration once and passes typed objects down; the CLI only parses
options and calls these.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def compose_params(
    conf_dir: str | Path = "conf", overrides: Sequence[str] = (),
    params_file: str | Path | None = "params.yaml",
) -> str:
    """Compose conf/ with overrides; write ``params_file`` (unless None); return the YAML text.

    Example:
        >>> compose_params("conf", ["model=logreg"])  # writes params.yaml
    """
    from gitml.config.compose import compose, render_params, write_params

    cfg = compose(conf_dir, overrides)
    if params_file is not None:
        write_params(cfg, params_file)
    return render_params(cfg)


def check_params(conf_dir: str | Path = "conf", params_file: str | Path = "params.yaml") -> None:
    """Raise ParamsOutOfSync when params.yaml differs from what conf/ composes to."""
    from gitml.config.compose import check_params as check

    check(conf_dir, params_file)


def load_params(params_file: str | Path = "params.yaml"):
    """Load and validate params.yaml into a typed :class:`gitml.config.schema.Config`."""
    from gitml.config.params import load_params as load

    return load(params_file)


def ingest(params_file: str | Path, out_dir: str | Path) -> Path:
    """Stage ``ingest``: write the raw snapshot from ``data.source``."""
    from gitml.stages.ingest import ingest as run

    return run(load_params(params_file).data, out_dir)


def validate(
    params_file: str | Path, raw_dir: str | Path, production_dir: str | Path,
    contract_out: str | Path, report_out: str | Path,
) -> dict[str, Any]:
    """Stage ``validate``: check every snapshot against the data contract."""
    from gitml.stages.validate import validate as run

    return run(load_params(params_file).data, raw_dir, production_dir, contract_out, report_out)


def prepare(
    params_file: str | Path, raw_dir: str | Path, production_dir: str | Path,
    contract_path: str | Path, out_dir: str | Path, summary_out: str | Path | None = None,
) -> dict[str, Any]:
    """Stage ``prepare``: merge batches, split, fit preprocessing, write Parquet."""
    from gitml.stages.prepare import prepare as run

    return run(load_params(params_file).data, raw_dir, production_dir, contract_path, out_dir, summary_out)


def train(
    params_file: str | Path, data_dir: str | Path, out_dir: str | Path,
    checkpoint_dir: str | Path | None, curves_out: str | Path, summary_out: str | Path | None = None,
) -> dict[str, Any]:
    """Stage ``train``: fit ``model.*`` with ``trainer.*`` and write the model folder."""
    from gitml.stages.train import train as run

    return run(load_params(params_file), data_dir, out_dir, checkpoint_dir, curves_out, summary_out)


def evaluate(
    params_file: str | Path, data_dir: str | Path, model_dir: str | Path,
    metrics_out: str | Path, plots_dir: str | Path,
) -> dict[str, Any]:
    """Stage ``evaluate``: metrics and plot data on the test split."""
    from gitml.stages.evaluate import evaluate as run

    return run(load_params(params_file).data, data_dir, model_dir, metrics_out, plots_dir)


def infer_schema(source: str | Path, out: str | Path, label: str, range_margin: float = 0.25) -> Path:
    """Infer a data contract from a trusted CSV/Parquet file or snapshot folder."""
    import pandas as pd
    import yaml

    from gitml.data.contract import infer_contract
    from gitml.data.snapshots import read_snapshots
    from gitml.data.sources import snake_case
    from gitml.utils.atomic import write_text

    source = Path(source)
    if source.is_dir():
        frame = read_snapshots(source)
    elif source.suffix == ".csv":
        frame = pd.read_csv(source)
    else:
        frame = pd.read_parquet(source)
    frame.columns = [snake_case(c) for c in frame.columns]
    contract = infer_contract(frame, snake_case(label), range_margin)
    return write_text(out, yaml.safe_dump(contract.to_dict(), sort_keys=False))


def summary(data_summary: str | Path = "reports/data.json", reports: str | Path = "reports") -> str:
    """A short human summary of the last run: rows, metrics, where outputs went."""
    lines = ["", "gitml pipeline summary", "----------------------"]
    data_summary = Path(data_summary)
    if data_summary.is_file():
        info = json.loads(data_summary.read_text())
        rows = info["rows"]
        lines.append(
            f"data     {rows['total']} rows ({rows['raw']} raw + {rows['production']} production)"
            f" -> train {rows['train']} / val {rows['val']} / test {rows['test']};"
            f" {info['features']['columns']} columns -> {info['features']['encoded']} features"
        )
    metrics = Path(reports) / "metrics.json"
    if metrics.is_file():
        test = json.loads(metrics.read_text()).get("test", {})
        shown = ", ".join(f"{k} {v:.4f}" for k, v in test.items() if isinstance(v, float))
        lines.append(f"metrics  test: {shown}")
    gate = Path(reports) / "gate.json"
    if gate.is_file():
        lines.append(f"gate     {json.loads(gate.read_text()).get('verdict', '?')}")
    lines.append("outputs  data/raw/ (snapshot), data/prepared/ (splits + preprocessor),"
                 " models/model/ (weights + preprocessing), reports/ (metrics, plots, validation)")
    lines.append("next     dvc metrics show | dvc plots show | dvc exp run -S model=hgb")
    return "\n".join(lines) + "\n"
