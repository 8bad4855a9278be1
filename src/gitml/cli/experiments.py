"""Experiment commands: ``gitml exp best`` turns the best gated point of a DVC sweep into a branch."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gitml.cli.base import OptPath, app
from gitml.cli.forge import ForgeUrlOpt, RepoSlugOpt

exp_app = typer.Typer(
    help="Work with the experiments of a DVC sweep (dvc exp run --queue, dvc queue start).\n\n"
    "Example: gitml exp best --metric test.roc_auc --pr",
    no_args_is_help=True,
)
app.add_typer(exp_app, name="exp")


@exp_app.command("best")
def best(
    metric: Annotated[str, typer.Option(help="A dotted path in paths.metrics (reports/metrics.json), e.g. "
                                             "test.roc_auc or test.rmse.")],
    minimize: Annotated[Optional[bool], typer.Option(  # noqa: UP045 - typer needs Optional
        "--min/--max", help="Lowest or highest wins (default: from the metric: rmse, mae, log_loss and "
                            "brier are lower-is-better).", show_default=False)] = None,
    branch: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Branch to create (default: exp/<experiment name>).")] = None,
    pull_request: Annotated[bool, typer.Option(
        "--pr", help="Push the branch and open a pull request with the ranking (token from GITML_TOKEN or "
                     "GITHUB_TOKEN).")] = False,
    repo_slug: RepoSlugOpt = None,
    forge_url: ForgeUrlOpt = None,
    base: Annotated[str, typer.Option(help="Branch the pull request targets.")] = "main",
    remote: Annotated[str, typer.Option(help="Git remote to push the branch to.")] = "origin",
    params: Annotated[OptPath, typer.Option("--params", help="Params file whose paths locate the metrics "
                                                               "and gate reports (default: params.yaml).")] = None,
) -> None:
    """Pick the current commit's best experiment that passed its gate and make it a branch.

    The experiments are the points of a sweep queued on this commit
    (`dvc exp run --queue -S 'trainer.epochs=10,30' -S 'model.dropout=0,0.2'`, then
    `dvc queue start -j 2`). The branch holds the experiment's params.yaml, dvc.lock and
    reports, so `dvc repro` there is a no-op.

    Example: gitml exp best --metric test.rmse --pr
    """
    from gitml import api

    result = api.exp_best(metric, minimize, branch, pull_request, repo_slug, forge_url, base, remote, params)
    value = "n/a" if result.best.value is None else f"{result.best.value:.4g}"
    typer.echo(f"best of {len(result.ranked)}: {result.best.name} ({metric} {value}, gate pass) -> branch "
               f"{result.branch}" + (f"; pull request {result.pull_url}" if result.pull_url else ""))
