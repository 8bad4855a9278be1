"""Commands of the pipeline and the project: config, the dvc.yaml stages, gate, predict, schema, summary, doctor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitml.cli.base import (
    ConfDirOpt,
    ContractOpt,
    DataSummaryOpt,
    MetricsInOpt,
    ModelDirOpt,
    ParamsOpt,
    PreparedOpt,
    ProductionOpt,
    RawOpt,
    _state,
    app,
    config_app,
    gate_app,
    schema_app,
)


@config_app.command("compose")
def config_compose(
    overrides: Annotated[
        list[str] | None,
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
