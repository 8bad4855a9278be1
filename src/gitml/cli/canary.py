"""``gitml canary check``: parse options, call the api verb, exit 0 promote/wait, 1 rollback, 2 error.

Only typer, typing and pathlib are imported here; pandas and scipy load inside the command.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gitml.cli.base import ModelOpt, OptPath, app, path_opt
from gitml.cli.forge import ForgeUrlOpt, RepoSlugOpt
from gitml.cli.monitoring import ModelLogDirOpt

canary_app = typer.Typer(help="Judge a canary against the stable version; propose its promotion or rollback.\n\n"
                         "Example: gitml canary check --model churn --log-dir logs --repo-slug acme/ml",
                         no_args_is_help=True)
app.add_typer(canary_app, name="canary")


@canary_app.command("check")
def check(
    model: ModelOpt = None,
    log_dir: ModelLogDirOpt = None,
    target: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional
        typer.Option("--target", help="Deployment target (folder or s3:// URL) the rollback is applied to when "
                     "a hard limit is crossed and canary.apply_rollback is true."),
    ] = None,
    metrics_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--metrics-url", help="A server's /metrics URL: compare mean predict time per version "
                     "(gitml_predict_duration_seconds); without it latency is not compared."),
    ] = None,
    params: Annotated[OptPath, typer.Option("--params", help="Composed parameters file; its canary.* (models.NAME.canary) "
                                            "is used (default: params.yaml when present, else the defaults).")] = None,
    out: Annotated[OptPath, path_opt("Report folder (canary.json, canary.md).", "paths.reports + /canary",
                                     "--out")] = None,
    pr: Annotated[bool, typer.Option("--pr/--no-pr", help="Open or update the pull request on promote or "
                                     "rollback (--no-pr: only report).")] = True,
    repo_slug: RepoSlugOpt = None,
    forge_url: ForgeUrlOpt = None,
    base: Annotated[str, typer.Option(help="Branch the pull request targets.")] = "main",
    remote: Annotated[str, typer.Option(help="Git remote to push the branch gitml/canary/NAME to.")] = "origin",
    label: Annotated[str, typer.Option(help="Label put on a newly opened pull request.")] = "canary",
) -> None:
    """Compare the canary of deploy/NAME.yaml with its stable version on the logged traffic.

    Prediction drift between the two versions (chi-squared on predicted classes, KS on predicted
    numbers, with PSI), the labelled metric where /feedback labels exist (two-sample bootstrap as
    the gate's), latency with --metrics-url. Verdict promote (healthy, enough rows), rollback
    (significantly degraded) or wait (fewer than canary.min_rows per version). On promote or
    rollback, one pull request per model on gitml/canary/NAME sets deploy/NAME.yaml to
    {CANARY: 100} or {STABLE: 100}; a second run updates it. Past a hard limit with
    canary.apply_rollback: true, the rollback is also written to --target at once.

    Exit 0 promote or wait, 1 rollback, 2 no verdict (an error: settings, files, the forge).

    Example: gitml canary check --model churn --log-dir logs --target /srv/gitml/churn --repo-slug acme/ml
    """
    from gitml import api
    from gitml.errors import GitmlError

    try:
        report = api.canary_check(params, model=model, log_dir=log_dir, target=target, out=out,
                                  metrics_url=metrics_url, pr=pr, repo_slug=repo_slug, forge_url=forge_url,
                                  base=base, remote=remote, label=label)
    except GitmlError as exc:
        exc.exit_code = 2  # every failure to reach a verdict exits 2, whatever its kind
        raise
    typer.echo(f"canary check of {report.model}: {report.verdict} (stable {report.stable})")
    for reason in report.reasons:
        typer.echo(f"  {reason}")
    if report.applied:
        typer.echo(f"  applied: every request of {target} now goes to {report.stable} <canary.apply_rollback>")
    if report.pull_request:
        typer.echo(f"  pull request ({report.pull_action}): {report.pull_request}")
    raise typer.Exit(report.exit_code)
