"""``gitml models``: the models a repository declares (conf/models/), and adding one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitml.cli.base import app

models_app = typer.Typer(
    help="Declare and list the models of a repository of several models (conf/models/).\n\n"
    "Example: gitml models add fraud:wine:hgb",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


@models_app.command("add")
def add(
    specs: Annotated[list[str], typer.Argument(
        metavar="NAME[:DATA[:MODEL]]...",
        help="A model to declare: its name, and optionally the conf/data and conf/model options it uses "
        "(default: conf/config.yaml's), e.g. fraud:wine:hgb.")],
    directory: Annotated[Path, typer.Option("--dir", help="The project's root.")] = Path("."),
) -> None:
    """Declare models: write conf/models/NAME.yaml and data/NAME/production/, compose params.yaml.

    In a one-model project, first turns it into one of several: its model becomes
    conf/models/<registry.model>.yaml and dvc.yaml repeats every stage per model (stage
    train@NAME), so a change to one model's file reruns that model alone. See docs/several-models.md.

    Example: gitml models add churn:breast_cancer:hgb price:diabetes:ridge && dvc repro
    """
    from gitml import api

    for line in api.add_models(specs, directory):
        typer.echo(line)


@models_app.command("list")
def list_models(
    params: Annotated[Path, typer.Option("--params", help="Composed parameters file.")] = Path("params.yaml"),
    names: Annotated[bool, typer.Option("--names", help="Names only, one per line (reads no model's settings).")] = False,
) -> None:
    """Print the declared models, one per line: name, data, model family, bundle path.

    A one-model project prints its one model (registry.model). For scripts: `gitml models list --names`.

    Example: for m in $(gitml models list --names); do dvc repro gate@$m; done
    """
    from gitml import api

    for line in api.list_models(params, names_only=names):
        typer.echo(line)


@models_app.command("changed")
def changed(
    base: Annotated[str, typer.Option("--base", help="The revision to compare with, e.g. origin/main or HEAD^1.")],
    head: Annotated[str | None, typer.Option(
        "--head", help="The revision that changed (default: the working tree).")] = None,
    merge_base: Annotated[bool, typer.Option(
        "--merge-base", help="Compare with the merge base of --base and the head: what a pull request changed, "
        "not what its base branch did since.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the models with the reasons each counts as changed.")] = False,
) -> None:
    """Print the models the change touched, one per line (nothing when none did).

    A model changed when its dvc.lock entries (stage@NAME), the params its stages declare in
    its models.NAME section, or conf/models/NAME.yaml differ, or it is new; a change to
    dvc.yaml touches every model. A one-model repository prints its model or nothing.
    See docs/ci.md.

    Example: for m in $(gitml models changed --base origin/main --merge-base); do gitml gate verify --model "$m"; done
    """
    from gitml import api

    found = api.changed_models(base, head, merge_base)
    if as_json:
        typer.echo(found.to_json())
    else:
        for name in found.names:
            typer.echo(name)
