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


@exp_app.command("search")
def search(
    metric: Annotated[str, typer.Option(help="A dotted path in paths.metrics, e.g. test.roc_auc or test.rmse.")],
    param: Annotated[list[str], typer.Option(
        "--param", metavar="KEY=SPEC", help="A params.yaml key and its range (repeatable): "
        "float:LOW:HIGH[:log], int:LOW:HIGH or choice:A,B,...")],
    trials: Annotated[int, typer.Option(help="Points to run in all.")] = 8,
    workers: Annotated[int, typer.Option("-j", "--workers", help="Points run at once (DVC queue workers).")] = 2,
    minimize: Annotated[Optional[bool], typer.Option(  # noqa: UP045
        "--min/--max", help="Lowest or highest wins (default: from the metric).", show_default=False)] = None,
    sampler: Annotated[str, typer.Option(help="tpe (Optuna's model-based sampler) or random.")] = "tpe",
    seed: Annotated[int, typer.Option(help="The sampler's seed.")] = 0,
    params: Annotated[OptPath, typer.Option("--params", help="Params file whose paths locate the metrics "
                                                               "and gate reports (default: params.yaml).")] = None,
) -> None:
    """Search a parameter space with Optuna, each point a gated DVC experiment of this commit.

    Rounds of --workers points: Optuna proposes them, DVC's queue runs them (the whole pipeline,
    gate included), their metric goes back to Optuna. Then `gitml exp best` makes the best a branch.

    Example: gitml exp search --metric test.roc_auc --param model.dropout=float:0:0.5 --param trainer.epochs=int:5:40 --trials 12
    """
    from gitml import api
    from gitml.gitops.search import summary_lines

    result = api.exp_search(metric, param, trials, workers, minimize, seed, sampler, params)
    for line in summary_lines(result):
        typer.echo(line)
    best = result.best
    typer.echo(f"best: {best[0]}; `gitml exp best --metric {metric}` makes it a branch" if best
               else "no point passed its gate with a value of the metric")
