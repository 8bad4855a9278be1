"""MODEL_CARD.md: a short, factual card built from the bundle's own metadata."""

from __future__ import annotations

from typing import Any

OVERALL = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "pr_auc", "log_loss", "brier",
           "rmse", "mae", "r2", "median_ae", "max_error", "bias")
SLICE_COLUMNS = {"classification": ("accuracy", "roc_auc"), "regression": ("rmse", "r2")}


def model_card(metadata: dict[str, Any], intended_use: str, limitations: str) -> str:
    metrics = metadata.get("metrics", {})
    test = metrics.get("test", {})
    data = metadata.get("data", {})
    regression = metrics.get("task") == "regression"
    lines = [
        f"# Model card: {metadata['name']}",
        "",
        # No build time or commit here: the card is part of a content-addressed bundle (see build.py)
        f"Family `{metadata['model']['family']}`, bundle id `{metadata.get('bundle_id')}`. The commit it "
        "belongs to is the one whose `dvc.lock` names this bundle; `gitml registry show` lists each "
        "registered version with its commit and the date it was registered.",
        "",
        "## Intended use",
        "",
        intended_use.strip(),
        "",
        "## Data",
        "",
        f"Data set `{data.get('name')}`: {data.get('rows', {}).get('total', '?')} rows "
        f"(train {data.get('rows', {}).get('train', '?')}, validation {data.get('rows', {}).get('val', '?')}, "
        f"test {data.get('rows', {}).get('test', '?')}); prepared data md5 "
        f"`{(metadata.get('provenance') or {}).get('prepared_md5')}`.",
        f"Inputs: {len(metadata.get('inputs', []))} columns; "
        + ("predicts a number (regression)." if regression else f"classes: {metadata.get('classes')}."),
        "",
        "## Metrics (held-out test split)",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {test[name]:.4f} |" for name in OVERALL if name in test]
    shown = SLICE_COLUMNS["regression" if regression else "classification"]
    for column, groups in (metrics.get("slices") or {}).items():
        lines += ["", f"### By `{column}`", "", f"| group | n | {' | '.join(shown)} |", "| --- | --- | --- | --- |"]
        for group, values in groups.items():
            cells = ["n/a" if values.get(name) is None else f"{values[name]:.4f}" for name in shown]
            lines.append(f"| {group} | {values['n']} | {' | '.join(cells)} |")
    lines += ["", "## Gate", "",
              "The gate judges this bundle after it is packaged: its verdict is `reports/gate.md` at the "
              "bundle's commit, and it names this bundle's manifest. The registry promotes, and "
              "`gitml deploy` publishes, only a bundle whose verdict there is a pass."]
    lines += ["", "## Limitations", "", limitations.strip(), ""]
    return "\n".join(lines)
