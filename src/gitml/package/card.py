"""MODEL_CARD.md: a short, factual card built from the bundle's own metadata."""

from __future__ import annotations

from typing import Any

OVERALL = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "pr_auc", "log_loss", "brier")


def model_card(metadata: dict[str, Any], intended_use: str, limitations: str) -> str:
    metrics = metadata.get("metrics", {})
    test = metrics.get("test", {})
    data = metadata.get("data", {})
    gate = metadata.get("gate") or {}
    lines = [
        f"# Model card: {metadata['name']}",
        "",
        f"Family `{metadata['model']['family']}`, built {metadata['created_at']} from commit "
        f"`{(metadata['git'].get('commit') or 'unknown')[:12]}`"
        + (" (with uncommitted changes)" if metadata["git"].get("dirty") else "") + ".",
        "",
        "## Intended use",
        "",
        intended_use.strip(),
        "",
        "## Data",
        "",
        f"Data set `{data.get('name')}`: {data.get('rows', {}).get('total', '?')} rows "
        f"(train {data.get('rows', {}).get('train', '?')}, validation {data.get('rows', {}).get('val', '?')}, "
        f"test {data.get('rows', {}).get('test', '?')}); prepared data md5 `{data.get('prepared_md5')}`.",
        f"Inputs: {len(metadata.get('inputs', []))} columns; classes: {metadata.get('classes')}.",
        "",
        "## Metrics (held-out test split)",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {test[name]:.4f} |" for name in OVERALL if name in test]
    for column, groups in (metrics.get("slices") or {}).items():
        lines += ["", f"### By `{column}`", "", "| group | n | accuracy | roc_auc |", "| --- | --- | --- | --- |"]
        for group, values in groups.items():
            auc = values.get("roc_auc")
            lines.append(f"| {group} | {values['n']} | {values['accuracy']:.4f} | "
                         f"{'n/a' if auc is None else f'{auc:.4f}'} |")
    lines += ["", "## Gate", ""]
    if gate:
        lines.append(f"Verdict: **{gate.get('verdict', '?').upper()}**"
                     + (f" against champion {gate['champion_version']}" if gate.get("champion_version") else "")
                     + ".")
        for rule in gate.get("rules", []):
            lines.append(f"- {rule['verdict']}: {rule['rule']} — {rule['reason']}")
    else:
        lines.append("No gate result was recorded.")
    lines += ["", "## Limitations", "", limitations.strip(), ""]
    return "\n".join(lines)
