"""Drift history: one row per drift check in the report folder, for ``dvc plots`` and the PR report.

Files (next to drift.json, committed with it by the retraining pull request)::

    history.csv            one row per check: run, time, verdict, rows, share of features
                           drifted, smallest p-value, prediction drift, the CBPE metric's
                           estimate and realised value (labelled rows), labelled rows
    history_features.csv   one row per check and feature: run, feature, p_value (long: DVC
                           plots draws one line per feature with the template below)
    history_p_values.json  that Vega-Lite template (a line per feature, log scale)

``run`` counts checks (1, 2, ...) and keeps counting after old rows are dropped: both files
keep the last ``drift.history_rows`` checks. Each append rewrites the file through a temporary
file and a rename, so a crash leaves the previous history, never half a row.
A p-value is written no smaller than :data:`P_FLOOR` (a log scale cannot draw 0).

:func:`history_plots` gives the ``plots:`` entries of dvc.yaml for a report folder.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.utils.atomic import write_text

if TYPE_CHECKING:
    from gitml.monitor.check import DriftReport

HISTORY, FEATURES, TEMPLATE = "history.csv", "history_features.csv", "history_p_values.json"
COLUMNS = ("run", "time", "verdict", "rows", "share_drifted", "min_p_value", "prediction_drift", "metric",
           "estimated", "realised", "n_labelled")
FEATURE_COLUMNS = ("run", "feature", "p_value")
P_FLOOR = 1e-12
TEMPLATE_SPEC = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "data": {"values": "<DVC_METRIC_DATA>"}, "title": "<DVC_METRIC_TITLE>",
    "width": 400, "height": 300, "mark": {"type": "line", "point": True},
    "encoding": {
        "x": {"field": "<DVC_METRIC_X>", "type": "quantitative", "title": "<DVC_METRIC_X_LABEL>"},
        "y": {"field": "<DVC_METRIC_Y>", "type": "quantitative", "title": "<DVC_METRIC_Y_LABEL>",
              "scale": {"type": "log"}},
        "color": {"field": "feature", "type": "nominal"},
        "tooltip": [{"field": "feature"}, {"field": "run"}, {"field": "p_value"}],
    },
}


def append_history(report: DriftReport, out_dir: Path, keep: int) -> dict[str, Any]:
    """Append ``report``'s summary to the folder's history (the last ``keep`` checks stay); return the row."""
    rows = read_history(out_dir / HISTORY)
    run = int(rows[-1]["run"]) + 1 if rows and str(rows[-1].get("run", "")).isdigit() else 1
    row = summary_row(report, run)
    rows = [*rows, {k: _text(v) for k, v in row.items()}][-keep:]
    features = [r for r in read_history(out_dir / FEATURES)
                if str(r.get("run", "")).isdigit() and int(r["run"]) >= int(rows[0]["run"])]
    tested = report.features.features if report.features is not None else []
    features += [{"run": str(run), "feature": f.name, "p_value": _text(max(f.p_value, P_FLOOR))} for f in tested]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / HISTORY, _csv(COLUMNS, rows))
    write_text(out_dir / FEATURES, _csv(FEATURE_COLUMNS, features))
    template = json.dumps(TEMPLATE_SPEC, indent=2) + "\n"
    if _read(out_dir / TEMPLATE) != template:
        write_text(out_dir / TEMPLATE, template)
    return row


def summary_row(report: DriftReport, run: int) -> dict[str, Any]:
    """One check's line of ``history.csv`` (None: no value, e.g. no labelled rows yet)."""
    features, perf = report.features, report.performance
    tested = features.features if features is not None else []
    predictions = report.predictions
    return {
        "run": run, "time": report.window.get("end"), "verdict": report.verdict, "rows": report.window.get("rows"),
        "share_drifted": len(features.drifted_features) / len(tested) if features is not None and tested else None,
        "min_p_value": min((f.p_value for f in tested), default=None),
        "prediction_drift": None if predictions is None else int(predictions.is_drift),
        "metric": perf.metric if perf else None,
        "estimated": perf.estimated.get(perf.metric) if perf else None,
        "realised": (perf.realised or {}).get(perf.metric) if perf else None,
        "n_labelled": perf.n_labelled if perf else None,
    }


def read_history(path: Path) -> list[dict[str, str]]:
    """The rows of a history file (text values, '' for none); [] when there is none."""
    text = _read(path)
    return list(csv.DictReader(io.StringIO(text))) if text else []


def read_both(folder: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The summary rows and the feature rows of a folder's history."""
    return read_history(folder / HISTORY), read_history(folder / FEATURES)


def merge_history(folder: Path, earlier: tuple[list[dict[str, str]], list[dict[str, str]]], keep: int) -> int:
    """Merge ``earlier`` (:func:`read_both` of another copy, e.g. the retraining branch's before an update)
    into ``folder``'s history: the union of the checks (one check is one row, ``run`` aside), in time
    order, numbered again from 1, the last ``keep`` kept. Returns the rows kept.

    The scheduled job starts from the base branch's history, so without this an update of an open
    retraining pull request would drop the checks it recorded since the pull request was opened.
    """
    current = read_both(folder)
    if not earlier[0]:
        return len(current[0])
    checks: dict[tuple[str, ...], tuple[int, str]] = {}  # the check -> (which copy, its run there)
    for origin, (rows, _) in enumerate((earlier, current)):
        for row in rows:
            checks.setdefault(tuple(row.get(c) or "" for c in COLUMNS[1:]), (origin, row.get("run") or ""))
    ordered = sorted(checks.items(), key=lambda item: item[0][0])[-keep:]  # by time (ISO, one zone)
    renumber = {where: str(n) for n, (_, where) in enumerate(ordered, 1)}
    rows = [{"run": renumber[where], **dict(zip(COLUMNS[1:], key, strict=True))} for key, where in ordered]
    features = [{**f, "run": renumber[(origin, f.get("run") or "")]}
                for origin, (_, feature_rows) in enumerate((earlier, current)) for f in feature_rows
                if (origin, f.get("run") or "") in renumber]
    write_text(folder / HISTORY, _csv(COLUMNS, rows))
    write_text(folder / FEATURES, _csv(FEATURE_COLUMNS, sorted(features, key=lambda f: int(f["run"]))))
    return len(rows)


def history_plots(drift_dir: str) -> list[dict[str, Any]]:
    """dvc.yaml top-level ``plots:`` entries drawing the history of the report folder ``drift_dir``.

    Example:
        >>> history_plots("reports/drift")[0]["Drift history: reports/drift"]["y"]
        {'reports/drift/history.csv': ['share_drifted', 'estimated', 'realised']}
    """
    return [
        {f"Drift history: {drift_dir}": {"template": "linear", "x": "run",
                                         "y": {f"{drift_dir}/{HISTORY}": ["share_drifted", "estimated", "realised"]}}},
        {f"Feature p-values: {drift_dir}": {"template": f"{drift_dir}/{TEMPLATE}", "x": "run",
                                            "y": {f"{drift_dir}/{FEATURES}": "p_value"}}},
    ]


def trend_table(rows: list[dict[str, str]], last: int = 5) -> list[str]:
    """Markdown lines of the last ``last`` checks (newest last), for drift.md and the PR report."""
    if not rows:
        return []
    lines = ["| run | time (UTC) | verdict | rows | share drifted | min p-value | estimated | realised |",
             "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows[-last:]:
        metric = f" {r['metric']}" if r.get("metric") else ""
        lines.append(f"| {r['run']} | {r['time'][:19]} | {r['verdict']} | {r['rows']} | {_short(r['share_drifted'])} "
                     f"| {_short(r['min_p_value'], '.3g')} | {_short(r['estimated'])}{metric} | {_short(r['realised'])} |")
    return lines


def _short(value: str, spec: str = ".3f") -> str:
    try:
        return format(float(value), spec)
    except (TypeError, ValueError):  # '' (no value) or a column an older history lacks
        return "-"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return repr(float(value)) if isinstance(value, float) else str(value)


def _csv(columns: tuple[str, ...], rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
