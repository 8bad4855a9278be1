"""Commands about the project as a whole: summary of the last run, and doctor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitml.cli.base import ModelOpt, OptPath, _state, app


@app.command()
def summary(
    params: Annotated[OptPath, typer.Option("--params", help="Params file whose paths locate the reports "
                                            "(default: ./params.yaml when present, else the default layout).")] = None,
    model: ModelOpt = None,
) -> None:
    """Print a short human summary of the last pipeline run: rows, metrics, outputs.

    Every report is read where the params file's ``paths`` put it.

    Example: gitml summary
    """
    from gitml import api

    typer.echo(api.summary(params, model))


@app.command()
def doctor(
    json_out: Annotated[bool, typer.Option("--json", help="Print the checks as a JSON list (for CI).")] = False,
    params: Annotated[Path, typer.Option("--params", help="Composed parameters file, from the repository root.")] = Path("params.yaml"),
    conf_dir: Annotated[Path, typer.Option("--conf-dir", help="Hydra config tree, from the repository root.")] = Path("conf"),
) -> None:
    """Check that this machine and repository are ready for the gitml loop, with a fix for each problem.

    One line per check (ok / warn / fail): Python and packages, the training device, git
    (remote, uncommitted changes), DVC (remote, Hydra), params.yaml against the schema and
    conf/, the registry's stages, the forge token (never its value) and workflows. Exit 1
    when a check fails; warnings alone exit 0. See docs/doctor.md.

    Example: gitml doctor   (in CI: gitml doctor --json > reports/doctor.json)
    """
    import json

    from gitml import api
    from gitml.doctor import summary_line, to_json

    checks = api.doctor(".", params, conf_dir, raise_errors=_state["traceback"])
    if json_out:
        typer.echo(json.dumps(to_json(checks), indent=2))
    else:
        colors = {"ok": typer.colors.GREEN, "warn": typer.colors.YELLOW, "fail": typer.colors.RED}
        for check in checks:
            typer.echo(typer.style(check.status, fg=colors[check.status]) + check.line()[len(check.status):])
        typer.echo(summary_line(checks))
    if any(check.status == "fail" for check in checks):
        raise typer.Exit(1)
