"""Registry commands: promote, fetch, registry show/history/which, and the pull-request report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gitml.cli.base import ModelOpt as StageModelOpt
from gitml.cli.base import OptPath, ParamsOpt, app, path_opt, registry_app


@app.command()
def promote(
    stage: Annotated[str, typer.Option(help="Stage to assign (registry.stages), e.g. staging or prod.")],
    bump: Annotated[str, typer.Option(help="Version bump when registering: auto|major|minor|patch.")] = "auto",
    version: Annotated[Optional[str], typer.Option(help="Assign this registered version instead of HEAD.")] = None,  # noqa: UP045
    push: Annotated[bool, typer.Option(help="Push the new tags to registry.remote (atomically).")] = False,
    params: ParamsOpt = Path("params.yaml"),
    model: StageModelOpt = None,
) -> None:
    """Register HEAD's model as a version (GTO tags) and assign it a stage.

    Refuses, touching nothing, when the tree is dirty, the gate failed or the bundle does
    not match dvc.lock. `auto` bumps major when the signature changed, minor otherwise.

    Example: gitml promote --stage staging --push
    """
    from gitml import api

    typer.echo(api.promote(stage, bump, version, push, params, model=model).describe())


@app.command()
def fetch(
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder to write the bundle to.")],
    stage: Annotated[Optional[str], typer.Option(help="Registry stage to resolve, e.g. prod.")] = None,  # noqa: UP045
    version: Annotated[Optional[str], typer.Option(help="Registered version, e.g. v1.2.0.")] = None,  # noqa: UP045
    params: ParamsOpt = Path("params.yaml"),
    model: StageModelOpt = None,
) -> None:
    """Resolve a stage or version to its commit and fetch that bundle through DVC, verified.

    Example: gitml fetch --stage prod -o /srv/models/current
    """
    from gitml import api

    found = api.fetch(out, stage, version, params, model=model)
    typer.echo(f"fetched {found.name} {found.version} (commit {found.commit[:10]}) into {out}")


ModelOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--model", metavar="NAME", help="Model name: one of conf/models/ in a repository of several models, "
    "else any registry artifact [registry.model].")]


@registry_app.command("which")
def registry_which(
    stage: Annotated[str, typer.Argument(help="Stage to resolve, e.g. prod.")],
    model: ModelOpt = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Print the version assigned to a stage (exit 1 when none), for scripts and workflows.

    Example: VERSION=$(gitml registry which prod)
    """
    from gitml import api

    typer.echo(api.registry_which(stage, params, model=model))


@app.command()
def report(
    base: Annotated[str, typer.Option(help="Git revision to diff against, e.g. origin/main.")] = "main",
    out: Annotated[OptPath, path_opt("Markdown file to write.", "paths.pr_report", "-o", "--out")] = None,
    plots: Annotated[OptPath, path_opt("Folder for the `dvc plots diff` HTML.", "paths.pr_plots")] = None,
    model: StageModelOpt = None,
) -> None:
    """Build the pull-request report: gate table, metrics and params diff, plots.

    Example: gitml report --base origin/main -o reports/pr.md
    """
    from gitml import api

    typer.echo(f"wrote {api.report(base, out, plots, model=model)}")


@registry_app.command("show")
def registry_show(
    model: ModelOpt = None,
    all_models: Annotated[bool, typer.Option("--all", help="Every model in the registry.")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Print every registered version and the stages it holds.

    Example: gitml registry show --model churn
    """
    from gitml import api

    typer.echo(api.registry_show(params, model=model, all_models=all_models))


@registry_app.command("history")
def registry_history(model: ModelOpt = None, params: ParamsOpt = Path("params.yaml")) -> None:
    """Print the registry's events (registrations and stage assignments), newest first.

    Example: gitml registry history --model churn
    """
    from gitml import api

    typer.echo(api.registry_history(params, model=model))
