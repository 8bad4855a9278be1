"""Render a gate result as JSON (for machines) and a Markdown table (for the pull request)."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from gitml.gate.rules import GateResult
from gitml.utils.atomic import write_json, write_text

if TYPE_CHECKING:
    from gitml.package.bundle import Bundle

# U+2796 HEAVY MINUS SIGN, escaped so it is not mistaken for a hyphen.
_ICONS = {"pass": "✅ pass", "fail": "❌ fail", "skip": "\u2796 skip"}


def _cell(text: str) -> str:
    # A pipe would end the cell, a newline the row.
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def to_markdown(result: GateResult, bundle: Bundle | None = None) -> str:
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
    if bundle is not None:
        context += (f" Judged the bundle `{_cell(bundle.id)}` (manifest sha256 `{bundle.manifest_sha256[:16]}`, "
                    f"model md5 `{_cell(bundle.model_md5)}`, as dvc.lock records the train stage's output).")
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
    bundle: Bundle | None = None,
) -> None:
    """Write ``result`` as JSON to ``json_path`` and as Markdown to ``md_path``, atomically.

    The JSON names the ``bundle`` it judged (``bundle.id``, ``bundle.manifest_sha256``) and
    its model (``model.md5``, DVC's hash): :func:`verdict_problems` admits no other bundle.
    """
    verdict = result.to_dict()
    if bundle is not None:
        verdict["bundle"] = {"id": bundle.id, "manifest_sha256": bundle.manifest_sha256}
        verdict["model"] = {"md5": bundle.model_md5}
    write_json(json_path, verdict)
    write_text(md_path, to_markdown(result, bundle))


def verdict_problems(verdict: Any, bundle: Bundle, where: str) -> list[str]:
    """Why the gate verdict ``verdict`` (parsed gate.json, from ``where``) does not admit ``bundle``.

    Empty when it is a pass that names this very bundle (its manifest) and its model. The
    one rule promote, fetch (registry/chain.py) and deploy apply.
    """
    if not isinstance(verdict, dict):
        return [f"{where} is not a gate verdict"]
    problems = []
    if verdict.get("verdict") != "pass":
        failed = [str(r.get("rule")) for r in verdict.get("rules") or [] if isinstance(r, dict) and r.get("verdict") == "fail"]
        problems.append(f"the gate verdict in {where} is '{verdict.get('verdict')}' "
                        f"(failed: {'; '.join(failed) or 'unknown'})")
    judged: dict[str, Any] = verdict["bundle"] if isinstance(verdict.get("bundle"), dict) else {}
    model: dict[str, Any] = verdict["model"] if isinstance(verdict.get("model"), dict) else {}
    if not judged.get("manifest_sha256"):
        problems.append(f"the gate verdict in {where} names no bundle it judged (bundle.manifest_sha256): "
                        "rerun the gate (`dvc repro gate`)")
    elif judged["manifest_sha256"] != bundle.manifest_sha256:
        problems.append(f"the gate verdict in {where} judged bundle {judged.get('id')} (manifest "
                        f"{str(judged['manifest_sha256'])[:16]}), not this bundle {bundle.id} "
                        f"(manifest {bundle.manifest_sha256[:16]})")
    if model.get("md5") is not None and model["md5"] != bundle.model_md5:
        problems.append(f"the gate verdict in {where} judged model {model['md5']}, not this bundle's model "
                        f"{bundle.model_md5}")
    return problems
