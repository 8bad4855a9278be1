"""``gitml drift check``: parse options, call :func:`gitml.monitor.check.drift_check`, exit.

Only typer, typing and pathlib are imported here; alibi-detect, torch and pandas load
inside the command, so ``gitml --help`` stays instant.

Exit codes: 0 no drift, 1 drift, 2 no verdict (no log, too few rows, bad bundle, bad config).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

drift_app = typer.Typer(
    help="Watch production traffic for drift against the bundle's reference sample.\n\n"
    "Example: gitml drift check --bundle models/bundle --log-dir logs",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``drift`` command group to the ``gitml`` app."""
    app.add_typer(drift_app, name="drift")


@drift_app.command("check")
def check(
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle folder holding the reference sample.")] = Path("models/bundle"),
    log_dir: Annotated[Path, typer.Option("--log-dir", help="Request and feedback log root (serve.log_dir).")] = Path("logs"),
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
    out: Annotated[Path, typer.Option("--out", help="Report folder (drift.json, drift.md, PNG plots).")] = Path("reports/drift"),
    cache: Annotated[Path, typer.Option("--cache", help="Folder keeping fitted detectors between runs.")] = Path(".gitml/drift-cache"),
) -> None:
    """Test recent traffic for drift; exit 0 no drift, 1 drift, 2 no verdict possible.

    Example: gitml drift check --bundle models/bundle --log-dir logs --window-hours 24
    """
    from gitml.errors import DriftCheckError, GitmlError

    try:
        from gitml.monitor.check import drift_check, load_drift_config

        cfg = load_drift_config(params, detector=detector, window_rows=window_rows,
                                window_hours=window_hours, p_val=p_val)
        report = drift_check(bundle, log_dir, cfg, out, cache)
    except DriftCheckError:
        raise
    except GitmlError as exc:  # a config or bundle error here means "no verdict": exit 2
        raise DriftCheckError(str(exc)) from exc
    typer.echo(f"drift check: {report.verdict} ({report.window['rows']} rows, detector "
               f"{report.config['detector']}); report in {out}/")
    for reason in report.reasons:
        typer.echo(f"  {reason}")
    raise typer.Exit(report.exit_code)
