"""The ``gitml`` command. Options are parsed here and handed to :mod:`gitml.api`; no logic.

Heavy libraries (torch, pandas, DVC, alibi-detect) are imported inside the commands that
need them, so ``gitml --help`` answers at once.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gitml import __version__
from gitml.errors import GitmlError

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
app.add_typer(config_app, name="config")
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


# ------------------------------------------------------------------------- config


@config_app.command("compose")
def config_compose(
    overrides: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(help="Hydra overrides, e.g. model=logreg trainer.epochs=5."),
    ] = None,
    conf_dir: ConfDirOpt = Path("conf"),
    params: Annotated[Path, typer.Option("--params", help="File to write.")] = Path("params.yaml"),
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the composed YAML instead of writing it.")
    ] = False,
) -> None:
    """Compose conf/ (plus overrides) into params.yaml, validating it against the schema.

    Example: gitml config compose model=random_forest data.split.seed=7
    """
    from gitml import api

    text = api.compose_params(conf_dir, overrides or [], None if print_only else params)
    if print_only:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"wrote {params} from {conf_dir}/")


@config_app.command("check")
def config_check(conf_dir: ConfDirOpt = Path("conf"), params: ParamsOpt = Path("params.yaml")) -> None:
    """Exit non-zero when params.yaml is not what conf/ composes to.

    Example: gitml config check --params params.yaml
    """
    from gitml import api

    api.check_params(conf_dir, params)
    typer.echo(f"{params} is in sync with {conf_dir}/")


# ------------------------------------------------------------------------- stages


@app.command()
def ingest(
    params: ParamsOpt = Path("params.yaml"),
    out: Annotated[Path, typer.Option("--out", help="Raw snapshot folder to write.")] = Path("data/raw"),
) -> None:
    """Stage: write the raw snapshot from the configured data source (data.source).

    Example: gitml ingest --params params.yaml --out data/raw
    """
    from gitml import api

    api.ingest(params, out)


@app.command()
def validate(
    params: ParamsOpt = Path("params.yaml"),
    raw: RawOpt = Path("data/raw"),
    production: ProductionOpt = Path("data/production"),
    contract: Annotated[Path, typer.Option(help="Effective data contract to write.")] = Path("data/contract.json"),
    report: Annotated[Path, typer.Option(help="Validation report to write.")] = Path("reports/validation.json"),
) -> None:
    """Stage: check every snapshot against the data contract; fail naming column and rule.

    Example: gitml validate --raw data/raw --production data/production
    """
    from gitml import api

    api.validate(params, raw, production, contract, report)


@app.command()
def prepare(
    params: ParamsOpt = Path("params.yaml"),
    raw: RawOpt = Path("data/raw"),
    production: ProductionOpt = Path("data/production"),
    contract: ContractOpt = Path("data/contract.json"),
    out: Annotated[Path, typer.Option(help="Prepared data folder to write.")] = Path("data/prepared"),
    summary: Annotated[Path, typer.Option(help="Row-count summary (DVC metrics) to write.")] = Path("reports/data.json"),
) -> None:
    """Stage: merge production batches, split (seeded, stratified), fit preprocessing.

    Example: gitml prepare --out data/prepared
    """
    from gitml import api

    api.prepare(params, raw, production, contract, out, summary)


@app.command()
def train(
    params: ParamsOpt = Path("params.yaml"),
    data: PreparedOpt = Path("data/prepared"),
    out: Annotated[Path, typer.Option(help="Model folder to write.")] = Path("models/model"),
    checkpoints: Annotated[Path, typer.Option(help="Checkpoint folder (resume after a crash).")] = Path("models/checkpoints"),
    curves: Annotated[Path, typer.Option(help="Per-epoch training curves (DVC plots) to write.")] = Path("reports/plots/training.csv"),
    summary: Annotated[Path, typer.Option(help="Training summary (DVC metrics) to write.")] = Path("reports/train.json"),
) -> None:
    """Stage: train the configured model family (model.*) with the trainer (trainer.*).

    Example: gitml train --params params.yaml --out models/model
    """
    from gitml import api

    api.train(params, data, out, checkpoints, curves, summary)


@app.command()
def evaluate(
    params: ParamsOpt = Path("params.yaml"),
    data: PreparedOpt = Path("data/prepared"),
    model: ModelDirOpt = Path("models/model"),
    metrics: Annotated[Path, typer.Option(help="Metrics file (DVC metrics) to write.")] = Path("reports/metrics.json"),
    plots: Annotated[Path, typer.Option(help="Folder for plot data (DVC plots).")] = Path("reports/plots"),
) -> None:
    """Stage: score the model on the held-out test split, overall and per slice.

    Example: gitml evaluate --model models/model --metrics reports/metrics.json
    """
    from gitml import api

    api.evaluate(params, data, model, metrics, plots)


@gate_app.command("run")
def gate_run(
    params: ParamsOpt = Path("params.yaml"),
    bundle: Annotated[Path, typer.Option(help="Packaged bundle to judge (verified first).")] = Path("models/bundle"),
    data: PreparedOpt = Path("data/prepared"),
    report: Annotated[Path, typer.Option(help="Gate result (JSON) to write.")] = Path("reports/gate.json"),
    markdown: Annotated[Path, typer.Option(help="Gate table (markdown) to write.")] = Path("reports/gate.md"),
) -> None:
    """Stage: judge the packaged bundle on every gate rule (gate.*) and write the verdict; never fails the pipeline.

    The verdict names the bundle it judged (its id and manifest sha256): promote, fetch and
    deploy accept a bundle only with a passing verdict that names it.

    Example: gitml gate run && gitml gate verify
    """
    from gitml import api

    api.gate(params, bundle, data, report, markdown)


@gate_app.command("verify")
def gate_verify(
    report: Annotated[Path, typer.Option(help="Gate result written by the gate stage.")] = Path("reports/gate.json"),
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Exit 1 when the gate verdict is fail (or stale: the champion changed since it ran).

    Example: gitml gate verify --report reports/gate.json
    """
    from gitml import api

    typer.echo(api.gate_verify(report, params))


@app.command()
def package(
    params: ParamsOpt = Path("params.yaml"),
    data: PreparedOpt = Path("data/prepared"),
    model: ModelDirOpt = Path("models/model"),
    contract: ContractOpt = Path("data/contract.json"),
    metrics: MetricsInOpt = Path("reports/metrics.json"),
    data_summary: DataSummaryOpt = Path("reports/data.json"),
    out: Annotated[Path, typer.Option(help="Bundle folder to write.")] = Path("models/bundle"),
) -> None:
    """Stage: assemble the verified bundle (model, signature, metadata, reference, card, manifest).

    Example: gitml package --out models/bundle
    """
    from gitml import api

    api.package(params, api.package_inputs(model, data, contract, metrics, data_summary), out)


@app.command()
def predict(
    source: Annotated[Path, typer.Argument(help="Input rows: a .csv or .parquet file.")],
    bundle: Annotated[Path, typer.Option(help="Bundle folder (verified before use).")] = Path("models/bundle"),
    out: Annotated[Path, typer.Option("-o", "--out", help="Parquet file to write.")] = Path("predictions.parquet"),
    chunk_rows: Annotated[int, typer.Option(help="Rows per streamed chunk.")] = 50_000,
    keep_columns: Annotated[bool, typer.Option(help="Copy the input columns into the output.")] = False,
) -> None:
    """Batch prediction: validate input against the bundle's signature, stream, write Parquet.

    Example: gitml predict --bundle models/bundle new_rows.csv -o scored.parquet
    """
    from gitml import api

    rows = api.predict(bundle, source, out, chunk_rows, keep_columns)
    typer.echo(f"wrote {rows} predictions to {out}")


@app.command()
def promote(
    stage: Annotated[str, typer.Option(help="Stage to assign (registry.stages), e.g. staging or prod.")],
    bump: Annotated[str, typer.Option(help="Version bump when registering: auto|major|minor|patch.")] = "auto",
    version: Annotated[Optional[str], typer.Option(help="Assign this registered version instead of HEAD.")] = None,  # noqa: UP045
    push: Annotated[bool, typer.Option(help="Push the new tags to registry.remote (atomically).")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Register HEAD's model as a version (GTO tags) and assign it a stage.

    Refuses, touching nothing, when the tree is dirty, the gate failed or the bundle does
    not match dvc.lock. `auto` bumps major when the signature changed, minor otherwise.

    Example: gitml promote --stage staging --push
    """
    from gitml import api

    typer.echo(api.promote(stage, bump, version, push, params).describe())


@app.command()
def fetch(
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder to write the bundle to.")],
    stage: Annotated[Optional[str], typer.Option(help="Registry stage to resolve, e.g. prod.")] = None,  # noqa: UP045
    version: Annotated[Optional[str], typer.Option(help="Registered version, e.g. v1.2.0.")] = None,  # noqa: UP045
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Resolve a stage or version to its commit and fetch that bundle through DVC, verified.

    Example: gitml fetch --stage prod -o /srv/models/current
    """
    from gitml import api

    found = api.fetch(out, stage, version, params)
    typer.echo(f"fetched {found.name} {found.version} (commit {found.commit[:10]}) into {out}")


@registry_app.command("which")
def registry_which(
    stage: Annotated[str, typer.Argument(help="Stage to resolve, e.g. prod.")],
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Print the version assigned to a stage (exit 1 when none), for scripts and workflows.

    Example: VERSION=$(gitml registry which prod)
    """
    from gitml import api

    typer.echo(api.registry_which(stage, params))


@app.command()
def report(
    base: Annotated[str, typer.Option(help="Git revision to diff against, e.g. origin/main.")] = "main",
    out: Annotated[Path, typer.Option("-o", "--out", help="Markdown file to write.")] = Path("reports/pr.md"),
    plots: Annotated[Path, typer.Option(help="Folder for the `dvc plots diff` HTML.")] = Path("reports/pr-plots"),
) -> None:
    """Build the pull-request report: gate table, metrics and params diff, plots.

    Example: gitml report --base origin/main -o reports/pr.md
    """
    from gitml import api

    api.report(base, out, plots)
    typer.echo(f"wrote {out}")


@registry_app.command("show")
def registry_show(params: ParamsOpt = Path("params.yaml")) -> None:
    """Print every registered version and the stages it holds.

    Example: gitml registry show
    """
    from gitml import api

    typer.echo(api.registry_show(params))


@registry_app.command("history")
def registry_history(params: ParamsOpt = Path("params.yaml")) -> None:
    """Print the registry's events (registrations and stage assignments), newest first.

    Example: gitml registry history
    """
    from gitml import api

    typer.echo(api.registry_history(params))


# ------------------------------------------------------------------------- schema


@schema_app.command("infer")
def schema_infer(
    source: Annotated[Path, typer.Argument(help="CSV or Parquet file (or snapshot folder).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Contract file to write (YAML).")],
    label: Annotated[str, typer.Option(help="Label column.")] = "target",
    range_margin: Annotated[float, typer.Option(help="Widen numeric ranges by this share.")] = 0.25,
) -> None:
    """Infer a data contract from a trusted file, to review and declare in data.schema.path.

    Example: gitml schema infer data/external/churn.csv -o churn.schema.yaml --label churned
    """
    from gitml import api

    api.infer_schema(source, out, label, range_margin)
    typer.echo(f"wrote {out}")


@app.command()
def summary(
    data: Annotated[Path, typer.Option(help="Data summary written by prepare.")] = Path("reports/data.json"),
    reports: Annotated[Path, typer.Option(help="Reports folder.")] = Path("reports"),
) -> None:
    """Print a short human summary of the last pipeline run: rows, metrics, outputs.

    Example: gitml summary
    """
    from gitml import api

    typer.echo(api.summary(data, reports))


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


# --------------------------------------------------------- command groups by package
# Packages that own several commands register them here. Each `cli` module imports only
# typer at import time, so `gitml --help` stays instant.


def _register_package_commands() -> None:
    import importlib

    for name in ("gitml.serve.cli", "gitml.monitor.cli", "gitml.gitops.cli"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that package has no commands yet
            raise
        module.register(app)


_register_package_commands()


# ---------------------------------------------------------------------- entry point


def main() -> None:
    """Console entry point: one place maps errors to exit codes."""
    try:
        app()
    except GitmlError as exc:
        if _state["traceback"]:
            raise
        typer.secho(f"gitml: error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.secho("gitml: interrupted", fg=typer.colors.RED, err=True)
        sys.exit(130)
    except Exception:
        if not _state["traceback"]:
            import traceback as tb

            typer.secho(
                "gitml: internal error (a bug, please report it with the trace below)",
                fg=typer.colors.RED, err=True,
            )
            tb.print_exc()
            sys.exit(2)
        raise
