"""The drift report: ``drift.json`` for machines, ``drift.md`` for people, PNG plots when asked.

Files in the report folder (each written atomically; the PNGs only with ``plots``, as
``gitml drift check --plots`` asks, since drawing them costs seconds of matplotlib)::

    drift.json          verdict, detector, window (with repeated rows dropped), schema change,
                        missing/infinite shares per feature, per-feature p-values and
                        cutoffs, prediction drift, metrics change on labelled rows, cache use
    drift.md            verdict first, the most drifted features, the input data, the metrics change
    distributions.png   reference vs current for the `drift.top_features` most drifted features
    p_values.png        every feature's p-value against the cutoff
    history*.csv        one row per check, kept across checks (gitml.monitor.history)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.monitor.history import HISTORY, append_history, read_history, trend_table
from gitml.monitor.performance import performance_lines
from gitml.utils.atomic import write_json, write_text

if TYPE_CHECKING:
    import pandas as pd

    from gitml.monitor.check import DriftReport
    from gitml.monitor.detectors import DriftResult

JSON, MARKDOWN, DISTRIBUTIONS, P_VALUES = "drift.json", "drift.md", "distributions.png", "p_values.png"
TABLE_ROWS = 10
HEADLINES = {"drift": "DRIFT", "no drift": "no drift", "schema_change": "SCHEMA CHANGE (no verdict)",
             "invalid_data": "INVALID DATA (no verdict)"}


def clear_report(out_dir: Path) -> None:
    """Remove an earlier run's report files: a check that could not run leaves no verdict behind."""
    for name in (JSON, MARKDOWN, DISTRIBUTIONS, P_VALUES):
        (out_dir / name).unlink(missing_ok=True)


def write_report(report: DriftReport, out_dir: Path, *, reference: pd.DataFrame,
                 current: pd.DataFrame, top_features: int, plots: bool = False) -> list[Path]:
    """Write the report files into ``out_dir``, the PNG plots only with ``plots``; return
    their paths (also kept in ``report.files``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    tested = report.features.features if report.features is not None and plots else []
    top = tested[: max(top_features, 0)]
    if tested:
        from gitml.monitor.plots import plot_distributions, plot_p_values

        if top:
            files.append(plot_distributions(out_dir / DISTRIBUTIONS, top, reference, current))
        if report.features is not None:
            files.append(plot_p_values(out_dir / P_VALUES, report.features, report.predictions))
    for stale in {DISTRIBUTIONS, P_VALUES} - {p.name for p in files}:
        (out_dir / stale).unlink(missing_ok=True)  # from an earlier run: would mislead
    report.files = [str(out_dir / name) for name in (JSON, MARKDOWN)] + [str(p) for p in files]
    append_history(report, out_dir, report.config["history_rows"])  # before drift.md, which shows the trend
    trend = trend_table(read_history(out_dir / HISTORY))
    write_text(out_dir / MARKDOWN, render_markdown(report) + ("\n## Trend (last checks)\n\n" + "\n".join(trend) + "\n"
                                                              if trend else ""))
    write_json(out_dir / JSON, report.to_dict())
    return [Path(p) for p in report.files]


# ---------------------------------------------------------------------- markdown


def render_markdown(report: DriftReport) -> str:
    """``drift.md``: the verdict on the first line, then the evidence."""
    result, window, cfg = report.features, report.window, report.config
    lines = [f"# Drift check: {HEADLINES.get(report.verdict, report.verdict)}", ""]
    if report.reasons:
        lines += [f"- {reason}" for reason in report.reasons]
    else:
        lines.append(f"No detector found drift at p_val {cfg['p_val']} (drift.p_val).")
    if result is None:
        lines += ["", "No detector ran: drift measured on a window that breaks the bundle's signature would say nothing "
                  "about drift. Exit code 2; no retraining pull request is opened."]
    lines += ["", "| | |", "| --- | --- |",
              f"| bundle | `{report.bundle['bundle_id']}` (version {report.bundle['version']}"
              + (f", task {report.bundle['task']}) |" if report.bundle.get("task") else ") |"),
              f"| window | {window['rows']} rows, {window['start'][:19]} to {window['end'][:19]} UTC "
              f"(drift.window_rows={_null(window['window_rows'])}, "
              f"drift.window_hours={_null(window['window_hours'])}) |"]
    if result is not None:
        lines += [f"| detector | {cfg['detector']}, p_val {cfg['p_val']}, {_cutoff_text(result, cfg)} |",
                  f"| reference | {result.n_reference} rows (bundle reference sample); current {result.n_current} rows |"]
        if result.p_value is not None:
            lines.append(f"| {result.detector} test | p-value {result.p_value_text}, distance "
                         f"{_num(result.distance)} (drifts above {_num(result.distance_threshold)}) |")
    lines += ["", "## Input data", "", *input_lines(report)]
    if result is not None:
        lines += ["", "## Most drifted features", ""]
        if result.diagnostic:
            lines += [f"Per-feature KS / chi-squared tests, to show *which* features moved; the verdict "
                      f"above is the {result.detector} test's.", ""]
        lines += _feature_table(result.features[:TABLE_ROWS])
        if len(result.features) > TABLE_ROWS:
            lines.append(f"\n... and {len(result.features) - TABLE_ROWS} more in drift.json.")
        if report.predictions is not None:
            regression = report.bundle.get("task") == "regression"
            lines += ["", "## Predicted values" if regression else "## Predicted probabilities", "",
                      *_feature_table(report.predictions.features, "output"), "",
                      *_summary_table(report.predictions.summary)]
        lines += ["", "## Metrics on labelled traffic", "", *_metrics_lines(report.metrics)]
        if report.performance is not None:
            lines += ["", "## Performance: estimated (CBPE) and realised", "", *performance_lines(report.performance)]
    plots = [Path(p).name for p in report.files if p.endswith(".png")]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{name[:-4]}]({name})" for name in plots]
    notes = [*report.notes]
    if report.cache:
        notes.append("cache: " + ", ".join(f"{k} {v}" for k, v in report.cache.items()))
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def input_lines(report: DriftReport) -> list[str]:
    """The input-data section: repeated rows dropped, and each feature's missing/infinite share."""
    window, limit = report.window, report.config["max_invalid_share"]
    dropped = window.get("duplicates_dropped", 0)
    lines = [f"{dropped} repeated row(s) (same request_id and row) dropped"
             + (f", {window.get('duplicates_conflicting', 0)} of them with other values." if dropped else ".")]
    flawed = [q for q in report.quality if q.missing or q.infinite]
    if not flawed:
        return [*lines, "", f"No missing or infinite values in the {len(report.quality)} feature(s) checked."]
    lines += ["", f"Invalid: infinite, or missing where the signature does not allow it; above "
              f"drift.max_invalid_share={limit} the check stops (exit 2).", "",
              "| feature | missing | infinite | nullable | invalid |", "| --- | ---: | ---: | --- | ---: |"]
    lines += [f"| `{q.name}` | {q.missing:.1%} | {q.infinite:.1%} | {'yes' if q.nullable else 'no'} | "
              f"{'**' if q.invalid > limit else ''}{q.invalid:.1%}{'**' if q.invalid > limit else ''} |"
              for q in sorted(flawed, key=lambda q: -q.invalid)[:TABLE_ROWS]]
    if len(flawed) > TABLE_ROWS:
        lines.append(f"\n... and {len(flawed) - TABLE_ROWS} more in drift.json.")
    return lines


def _feature_table(features: list[Any], what: str = "feature") -> list[str]:
    rows = [f"| {what} | test | p-value | statistic | cutoff | drifted |",
            "| --- | --- | ---: | ---: | ---: | --- |"]
    rows += [f"| `{f.name}` | {f.test} | {p_text(f.p_value)} | {f.distance:.3g} | {p_text(f.threshold)} | "
             f"{'**yes**' if f.drifted else 'no'} |" for f in features]
    return rows


def _summary_table(summary: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """Each tested output on both sides, in its own units (a regression's predicted number)."""
    lines = ["| output | rows | mean | std | 5% | median | 95% |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, sides in summary.items():
        lines += [f"| `{name}` | {side} {s.get('n', 0)} | " + " | ".join(_num(s.get(k)) for k in
                  ("mean", "std", "p05", "median", "p95")) + " |" for side, s in sides.items()]
    return lines if summary else []


def _metrics_lines(metrics: dict[str, Any] | None) -> list[str]:
    if not metrics:
        return ["No labels for the window's rows in the feedback log."]
    lines = [f"{metrics['n_labelled']} labelled rows, scored by this bundle; \"at release\" is "
             "the bundle's test split."]
    if metrics.get("task") == "regression":
        lines[0] += " RMSE and MAE: lower is better; R^2: higher is better."
        lines += _decay_lines(metrics.get("decay"))
    lines += ["", "| metric | at release | now | change |", "| --- | ---: | ---: | ---: |"]
    for name, m in metrics["metrics"].items():
        change = "" if m["change"] is None else f"{m['change']:+.4f}"
        gated = " (gated)" if m["gated"] else ""
        lines.append(f"| {name}{gated} | {_num(m['reference'])} | {m['current']:.4f} | {change} |")
    lines += ["", *(f"- **{b}**" for b in metrics["gate_breaches"])] if metrics["gate_breaches"] else []
    return lines


def _decay_lines(decay: dict[str, Any] | None) -> list[str]:
    if not decay:
        return ["", "No decay measured: the bundle's test metrics lack the gate's baseline metric."]
    relative = "" if decay["relative"] is None else f", {decay['relative']:+.1%}"
    verdict = "worse" if decay["worse"] else "not worse"
    return ["", f"Decay of {decay['metric']} (gate.baseline.metric; "
            f"{'higher' if decay['higher_is_better'] else 'lower'} is better): {_num(decay['reference'])} "
            f"at release, {_num(decay['current'])} now ({decay['change']:+.4g}{relative}): **{verdict}**."]


def _cutoff_text(result: DriftResult, cfg: dict[str, Any]) -> str:
    if result.p_value is not None:
        return "one multivariate test"
    return f"{cfg['correction']} correction over {len(result.features)} features: cutoff {p_text(result.threshold)}"


def _null(value: Any) -> str:
    return "null" if value is None else str(value)


def p_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"


def _num(value: Any) -> str:
    return "n/a" if not isinstance(value, (int, float)) else f"{value:.4g}"
