"""``gitml drift check``: parse options, call :func:`gitml.monitor.check.drift_check`, exit.

Only typer, typing and pathlib are imported here; alibi-detect, torch and pandas load
inside the command, so ``gitml --help`` stays instant.

Exit codes: 0 no drift, 1 drift, 2 no verdict (no log, too few rows, bad bundle, bad config,
a schema change, a feature past drift.max_invalid_share).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gitml.cli.base import LogDirOpt, OptPath, drift_app, path_opt


@drift_app.command("check")
def check(
    bundle: Annotated[OptPath, path_opt("Bundle folder holding the reference sample.", "paths.bundle", "--bundle")] = None,
    log_dir: LogDirOpt = None,
    params: Annotated[
        Optional[Path],  # noqa: UP045 - typer needs Optional
        typer.Option("--params", help="Composed parameters file; its drift.* section is used "
                     "(default: params.yaml when present, else the built-in defaults)."),
    ] = None,
    detector: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--detector", help="Override drift.detector: ks | tabular | mmd | classifier."),
    ] = None,
    window_rows: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--window-rows", help="Override drift.window_rows: test the last N logged rows."),
    ] = None,
    window_hours: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--window-hours", help="Override drift.window_hours: test the last H hours."),
    ] = None,
    p_val: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--p-val", help="Override drift.p_val: significance level after correction."),
    ] = None,
    out: Annotated[OptPath, path_opt("Report folder (drift.json, drift.md; PNG plots with --plots).", "paths.drift",
                                     "--out")] = None,
    cache: Annotated[Path, typer.Option("--cache", help="Folder keeping fitted detectors between runs.")] = Path(".gitml/drift-cache"),
    plots: Annotated[bool, typer.Option("--plots", help="Also draw distributions.png and p_values.png "
                                        "(matplotlib: seconds); the scheduled drift workflow asks for them.")] = False,
) -> None:
    """Test recent traffic for drift; exit 0 no drift, 1 drift, 2 no verdict possible.

    Exit 2 covers no log, too few rows, a bad bundle or settings, a schema change (a
    signature column missing, renamed, new or of another type in the log) and a feature
    with more invalid values (infinite, or missing where not nullable) than
    drift.max_invalid_share; the last two still write the report. Repeated rows (the same
    request_id and row) count once.

    Example: gitml drift check --bundle models/bundle --log-dir logs --window-hours 24 --plots
    """
    from gitml import api

    report = api.drift_check(bundle, log_dir, out, cache, params, detector=detector, window_rows=window_rows,
                             window_hours=window_hours, p_val=p_val, plots=plots)
    failed = report.exit_code == 2  # schema change or invalid values: stderr, like other exit-2 errors
    where = out if out is not None else api.project_paths(params).drift
    typer.echo(f"drift check: {report.verdict.replace('_', ' ')} ({report.window['rows']} rows, detector "
               f"{report.config['detector']}); report in {where}/", err=failed)
    for reason in report.reasons:
        typer.echo(f"  {reason}", err=failed)
    for line in report.input_summary():
        typer.echo(f"  {line}", err=failed)
    raise typer.Exit(report.exit_code)
