"""The ``gitml`` app, its command groups and the options several commands share.

Imports only typer, typing and pathlib, so ``gitml --help`` answers at once: every command
imports :mod:`gitml.api` (and through it the heavy libraries) inside its body.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gitml import __version__

app = typer.Typer(
    name="gitml",
    help="GitOps-style declarative MLOps: the git repository is the control plane.\n\n"
    "Example: gitml config compose model=logreg && dvc repro",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
config_app = typer.Typer(
    help="Compose conf/ into params.yaml and check they agree.\n\nExample: gitml config check",
    no_args_is_help=True,
)
schema_app = typer.Typer(
    help="Work with data contracts.\n\nExample: gitml schema infer data.csv -o schema.yaml",
    no_args_is_help=True,
)
registry_app = typer.Typer(
    help="Read the git-tag model registry.\n\nExample: gitml registry show",
    no_args_is_help=True,
)
gate_app = typer.Typer(
    help="Run the promotion gate and verify its verdict.\n\nExample: gitml gate verify",
    no_args_is_help=True,
)
drift_app = typer.Typer(
    help="Watch production traffic for drift against the bundle's reference sample.\n\n"
    "Example: gitml drift check --bundle models/bundle --log-dir logs",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")
app.add_typer(drift_app, name="drift")
app.add_typer(gate_app, name="gate")
app.add_typer(registry_app, name="registry")
app.add_typer(schema_app, name="schema")

_state = {"traceback": False}

ParamsOpt = Annotated[Path, typer.Option("--params", help="Composed parameters file to read.")]
ConfDirOpt = Annotated[Path, typer.Option("--conf-dir", help="Hydra config tree to compose.")]

# Options several stages share (paths come from dvc.yaml; these defaults match it).
RawOpt = Annotated[Path, typer.Option(help="Raw snapshot folder.")]
ProductionOpt = Annotated[Path, typer.Option(help="Labelled production batches folder.")]
PreparedOpt = Annotated[Path, typer.Option(help="Prepared data folder.")]
ContractOpt = Annotated[Path, typer.Option(help="Data contract written by validate.")]
ModelDirOpt = Annotated[Path, typer.Option(help="Model folder written by train.")]
MetricsInOpt = Annotated[Path, typer.Option(help="Metrics written by evaluate.")]
DataSummaryOpt = Annotated[Path, typer.Option(help="Row counts written by prepare.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gitml {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")] = False,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the full stack trace on errors.")
    ] = False,
    version: Annotated[
        Optional[bool],  # noqa: UP045 - typer needs Optional
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """GitOps-style declarative MLOps: the git repository is the control plane."""
    _state["traceback"] = traceback
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="gitml: %(message)s",
        stream=sys.stderr,
    )
    # Libraries that log every HTTP exchange at INFO: keep their detail for --verbose.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
