"""`gitml init`: write a new gitml project, or update one and keep the user's edits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gitml.cli.base import app


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="Folder of the project: new, empty, or one gitml init wrote.")] = Path("."),
    data: Annotated[Optional[Path], typer.Option(  # noqa: UP045 - typer needs Optional
        "--data", metavar="FILE", help="Your CSV or Parquet file: copied to data/external/, its contract inferred "
                       "(default: a built-in scikit-learn set).")] = None,
    label: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--label", metavar="COL", help="The column of --data that holds what to predict.")] = None,
    task: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--task", metavar="TASK", help="binary, multiclass or regression (default: from the label's values: a number with fractions or more than 20 values is regression).")] = None,
    model: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--model", metavar="OPTION", help="A conf/model option, such as hgb or logreg (default: the one conf/config.yaml selects).")] = None,
    models: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--models", metavar="NAME[:DATA[:MODEL]]", help="Make it a repository of several models: declare this one "
        "(repeatable), e.g. --models churn:breast_cancer:hgb --models price:diabetes:ridge. See docs/several-models.md.")] = None,
    take: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--take", metavar="PATH", help="Take the new version of this file although you changed it (repeatable).")] = None,
) -> None:
    """Write a gitml project: conf/, dvc.yaml, params.yaml, workflows, tests, Makefile; git and DVC set up.

    Run again over the project to bring it up to the installed gitml: every difference is
    shown as a diff, files you changed are kept (--take PATH takes the new one). See docs/init.md.

    Example: gitml init churn-model --data churn.csv --label churned --model hgb
    """
    from gitml import api

    result = api.init(directory, data=data, label=label, task=task, model=model, take=tuple(take or ()),
                      models=tuple(models or ()))
    for line in result.lines():
        typer.echo(line)
