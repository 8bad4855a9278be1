"""``gitml drift check`` and ``gitml drift run``: parse options, call the api verb, exit.

Only typer, typing and pathlib are imported here; alibi-detect, torch and pandas load
inside the command, so ``gitml --help`` stays instant.

Exit codes of check: 0 no drift, 1 drift, 2 no verdict (no log, too few rows, bad bundle, bad
config, a schema change, a feature past drift.max_invalid_share). Of run: 0 every model checked
(drifting ones have their pull request), 1 some model failed (each is named).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gitml.cli.base import ModelOpt, OptPath, drift_app, path_opt
from gitml.cli.forge import ForgeUrlOpt, RepoSlugOpt

# In a repository of several models the server writes each model's logs under LOG_DIR/NAME.
ModelLogDirOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045 - typer needs Optional
    "--log-dir", help="Request and feedback log folder or s3:// URL (default: serve.log_dir in params.yaml; "
    "with --model in a repository of several models, serve.log_dir/NAME, where the server writes it).")]


@drift_app.command("check")
def check(
    bundle: Annotated[OptPath, path_opt("Bundle folder holding the reference sample.", "paths.bundle", "--bundle")] = None,
    log_dir: ModelLogDirOpt = None,
    model: ModelOpt = None,
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

    With --model, that model's drift settings, bundle (paths.bundle), logs and report folder
    (reports/NAME/drift).

    Example: gitml drift check --bundle models/bundle --log-dir logs --window-hours 24 --plots
    """
    from gitml import api

    report = api.drift_check(bundle, log_dir, out, cache, params, detector=detector, window_rows=window_rows,
                             window_hours=window_hours, p_val=p_val, plots=plots, model=model)
    failed = report.exit_code == 2  # schema change or invalid values: stderr, like other exit-2 errors
    where = out if out is not None else api.project_paths(params, model).drift
    typer.echo(f"drift check: {report.verdict.replace('_', ' ')} ({report.window['rows']} rows, detector "
               f"{report.config['detector']}); report in {where}/", err=failed)
    for reason in report.reasons:
        typer.echo(f"  {reason}", err=failed)
    for line in report.input_summary():
        typer.echo(f"  {line}", err=failed)
    if report.performance is not None:
        typer.echo(f"  {report.performance.summary()}")
    raise typer.Exit(report.exit_code)


@drift_app.command("run")
def run(
    stage: Annotated[str, typer.Option("--stage", help="Registry stage whose version of each model is "
                                       "checked (fetched and verified like `gitml fetch`).")] = "prod",
    models: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--model", metavar="NAME", help="Check only this model (repeatable; default: every model)."),
    ] = None,
    bundles: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--bundle", metavar="NAME=FOLDER", help="Check this bundle as model NAME instead of "
                     "fetching its stage version (repeatable; then only the models named)."),
    ] = None,
    bundles_dir: Annotated[Path, typer.Option("--bundles-dir", help="Where fetched bundles go, one folder "
                                              "per model.")] = Path(".gitml/drift/bundles"),
    log_dir: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--log-dir", help="The servers' log root, a folder or s3:// URL; each model's logs are in "
                     "LOG_DIR/NAME when the repository has several (default: serve.log_dir in params.yaml)."),
    ] = None,
    params: Annotated[Path, typer.Option("--params", help="Composed parameters file to read.")] = Path("params.yaml"),
    cache: Annotated[Path, typer.Option("--cache", help="Folder keeping fitted detectors between runs.")] = Path(".gitml/drift-cache"),
    plots: Annotated[bool, typer.Option("--plots", help="Also draw each report's PNG plots.")] = False,
    repo_slug: RepoSlugOpt = None,
    forge_url: ForgeUrlOpt = None,
    base: Annotated[str, typer.Option(help="Branch the pull requests target.")] = "main",
    remote: Annotated[str, typer.Option(help="Git remote to push the retraining branches to.")] = "origin",
    label: Annotated[str, typer.Option(help="Label put on a newly opened pull request.")] = "retrain",
) -> None:
    """Check every deployed model for drift; open or update one retraining pull request per drifting model.

    For each model (of conf/models/, or the one model): its --stage version (a model with none
    is skipped), its logs, its drift settings; the report goes to its paths.drift and a drifting
    model's labelled rows to its own branch (gitml/retrain/NAME) and pull request. A model that
    fails (no logs, a bundle that cannot be fetched) does not stop the others: exit 1 names it.

    Example: gitml drift run --stage prod --log-dir logs --plots
    """
    from gitml import api

    outcomes = api.drift_run(params, models=models or [], bundles=bundles or [], stage=stage,
                             bundles_dir=bundles_dir, log_dir=log_dir, cache=cache, plots=plots,
                             repo_slug=repo_slug, forge_url=forge_url, base=base, label=label, remote=remote)
    for outcome in outcomes:
        typer.echo(outcome.line())
    failed = [o.model for o in outcomes if o.status == "failed"]
    pulls = sum(o.status == "drift" for o in outcomes)
    typer.echo(f"drift run: {len(outcomes)} model(s), {pulls} drifting, {len(failed)} failed"
               + (f": {', '.join(failed)}" if failed else ""), err=bool(failed))
    raise typer.Exit(1 if failed else 0)
