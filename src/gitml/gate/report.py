"""Render a gate result as JSON (for machines) and a Markdown table (for the pull request)."""

from __future__ import annotations

import math
import os

from gitml.gate.rules import GateResult
from gitml.utils.atomic import write_json, write_text

# U+2796 HEAVY MINUS SIGN, escaped so it is not mistaken for a hyphen.
_ICONS = {"pass": "✅ pass", "fail": "❌ fail", "skip": "\u2796 skip"}


def _cell(text: str) -> str:
    # A pipe would end the cell, a newline the row.
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def to_markdown(result: GateResult, model_md5: str | None = None) -> str:
    """The verdict as a heading, then one table row per rule.

    Example:
        >>> print(to_markdown(result))  # doctest: +SKIP
        ### Gate: FAIL (1 of 4 rules failed)
        ...
    """
    failed, total = len(result.failed()), len(result.rules)
    if result.verdict == "pass":
        heading = f"### Gate: PASS ({total} rule{'s' if total != 1 else ''} checked)"
    else:
        heading = f"### Gate: FAIL ({failed} of {total} rule{'s' if total != 1 else ''} failed)"
    if result.champion_version:
        context = f"Compared with the champion `{result.champion_version}`."
    else:
        context = "No champion to compare with."
    if model_md5:
        context += f" Judged the model `{_cell(model_md5)}` (md5 of models/model, as dvc.lock records it)."
    lines = [
        heading, "", context, "",
        "| Rule | Value | Bound | Verdict | Reason |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for rule in result.rules:
        cells = (
            rule.rule, _value(rule.value), rule.bound,
            _ICONS.get(rule.verdict, rule.verdict), rule.reason,
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    result: GateResult, json_path: str | os.PathLike[str], md_path: str | os.PathLike[str],
    model_md5: str | None = None,
) -> None:
    """Write ``result`` as JSON to ``json_path`` and as Markdown to ``md_path``, atomically.

    ``model_md5`` (DVC's hash of the judged model folder) goes into the JSON as
    ``model.md5``: the verdict names the model it judged, so it cannot vouch for another.
    """
    verdict = result.to_dict()
    if model_md5 is not None:
        verdict["model"] = {"md5": model_md5}
    write_json(json_path, verdict)
    write_text(md_path, to_markdown(result, model_md5))
