"""The ``gitml`` app, its command groups and the options several commands share.

Imports only typer, typing and pathlib, so ``gitml --help`` answers at once: every command
imports :mod:`gitml.api` (and through it the heavy libraries) inside its body.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

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

# A path option left out is resolved by the api verb from the `paths` section of the params
# file (gitml.config.paths), so the layout lives in one place: conf/paths/default.yaml.
OptPath = Optional[Path]  # noqa: UP045 - typer needs Optional


def path_opt(what: str, key: str, *names: str) -> Any:
    """A path option whose default is ``paths.<key>`` in params.yaml (None here: the api verb resolves it)."""
    return typer.Option(*names, help=f"{what.rstrip('.')} (default: {key} in params.yaml).")


# Options several commands share.
RawOpt = Annotated[OptPath, path_opt("Raw snapshot folder.", "paths.raw")]
ProductionOpt = Annotated[OptPath, path_opt("Labelled production batches folder.", "paths.production")]
PreparedOpt = Annotated[OptPath, path_opt("Prepared data folder.", "paths.prepared")]
ContractOpt = Annotated[OptPath, path_opt("Data contract written by validate.", "paths.contract")]
ModelDirOpt = Annotated[OptPath, path_opt("Model folder written by train.", "paths.model", "--model-dir")]
# In a repository of several models (conf/models/<name>.yaml), the model whose section of
# params.yaml (models.<name>) a command reads: its data, settings, paths and registry name.
ModelOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--model", metavar="NAME",
    help="The model to work on, in a repository of several models (conf/models/NAME.yaml); "
    "default: the only one.")]
MetricsInOpt = Annotated[OptPath, path_opt("Metrics written by evaluate.", "paths.metrics")]
DataSummaryOpt = Annotated[OptPath, path_opt("Row counts written by prepare.", "paths.data_summary")]
BundleOpt = Annotated[OptPath, path_opt("Bundle folder (verified before use).", "paths.bundle")]
LogDirOpt = Annotated[Optional[str], path_opt("Request and feedback log root: a folder or an s3:// URL.",  # noqa: UP045
                                              "serve.log_dir")]
DriftDirOpt = Annotated[OptPath, path_opt("Drift report folder (drift.json verdict, drift.md, plots).", "paths.drift")]


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
    # Libraries that log every HTTP exchange (or, for S3, where they found credentials and the
    # endpoint) at INFO: keep their detail for --verbose.
    for noisy in ("httpx", "httpcore", "botocore", "aiobotocore", "s3fs"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
