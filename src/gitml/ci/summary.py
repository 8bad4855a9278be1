"""``gitml summary``: the last pipeline run in a few lines, from the files the stages wrote."""

from __future__ import annotations

import json
from pathlib import Path

from gitml.config.paths import PathsConfig


def render_summary(paths: PathsConfig, root: Path = Path("."), model: str | None = None) -> str:
    """Rows, training, test metrics, the gate verdict and the bundle, each from its own report.

    ``paths``: where the stages wrote them (params.yaml's ``paths``), relative to ``root``;
    ``model``: the model of a repository of several models they belong to (the next steps name it).
    """
    lines = ["", "gitml pipeline summary", "----------------------"]
    data_summary, bundle = root / paths.data_summary, root / paths.bundle
    if data_summary.is_file():
        info = json.loads(data_summary.read_text())
        rows = info["rows"]
        lines.append(
            f"data     {rows['total']} rows ({rows['raw']} raw + {rows['production']} production)"
            f" -> train {rows['train']} / val {rows['val']} / test {rows['test']};"
            f" {info['features']['columns']} columns -> {info['features']['encoded']} features"
        )
    train = root / paths.train_summary
    if train.is_file():
        info = json.loads(train.read_text())["train"]
        lines.append(f"train    {info['family']} on {info['device']}: {info['epochs']} epoch(s)"
                     + (f", {info['ranks']} ranks" if info.get("ranks", 1) > 1 else "")
                     + (", streamed from row groups" if info.get("streamed") else "")
                     + (f", resumed after epoch {info['resumed_from_epoch']}" if info.get("resumed_from_epoch") else ""))
    metrics = root / paths.metrics
    if metrics.is_file():
        test = json.loads(metrics.read_text()).get("test", {})
        keys = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss", "rmse", "mae", "r2")
        lines.append("metrics  test: " + ", ".join(f"{k} {test[k]:.4f}" for k in keys if k in test))
    gate = root / paths.gate
    if gate.is_file():
        result = json.loads(gate.read_text())
        failed = [r["rule"] for r in result.get("rules", []) if r.get("verdict") == "fail"]
        lines.append(f"gate     {result.get('verdict', '?').upper()} ({len(result.get('rules', []))} rules"
                     + (f"; failed: {'; '.join(failed)}" if failed else "") + f") -> {paths.gate_md}")
    if bundle.is_dir():
        from gitml.package.bundle import load_bundle as load

        packaged = load(bundle, model=False)
        lines.append(f"bundle   {paths.bundle}/ (id {packaged.id}; sha256 manifest of {len(packaged.manifest['files'])} files)")
    lines.append(f"outputs  {paths.prepared}/, {paths.model}/, {paths.reports}/ (metrics, plots, gate)")
    if model is None:
        lines.append("next     dvc metrics show | dvc plots show | dvc exp run -S model=hgb | "
                     "gitml promote --stage staging")
    else:  # DVC's Hydra integration is off in a repository of several models (gitml.scaffold.several)
        lines.append(f"next     dvc metrics show | dvc plots show | edit conf/models/{model}.yaml, gitml config compose, "
                     f"dvc repro | gitml promote --model {model} --stage staging")
    return "\n".join(lines) + "\n"
