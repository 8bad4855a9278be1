"""Commands of the pipeline: config, the dvc.yaml stages, gate, predict, schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gitml.cli.base import (
    BundleOpt,
    ConfDirOpt,
    ContractOpt,
    DataSummaryOpt,
    MetricsInOpt,
    ModelDirOpt,
    ModelOpt,
    OptPath,
    ParamsOpt,
    PreparedOpt,
    ProductionOpt,
    RawOpt,
    app,
    config_app,
    gate_app,
    path_opt,
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
    out: Annotated[OptPath, path_opt("Raw snapshot folder to write.", "paths.raw", "--out")] = None,
    name: ModelOpt = None,
) -> None:
    """Stage: write the raw snapshot from the configured data source (data.source).

    Example: gitml ingest --params params.yaml --out data/raw
    """
    from gitml import api

    api.ingest(params, out, model=name)


@app.command()
def validate(
    params: ParamsOpt = Path("params.yaml"),
    raw: RawOpt = None,
    production: ProductionOpt = None,
    contract: Annotated[OptPath, path_opt("Effective data contract to write.", "paths.contract")] = None,
    report: Annotated[OptPath, path_opt("Validation report to write.", "paths.validation")] = None,
    name: ModelOpt = None,
) -> None:
    """Stage: check every snapshot against the data contract; fail naming column and rule.

    Example: gitml validate --raw data/raw --production data/production
    """
    from gitml import api

    api.validate(params, raw, production, contract, report, model=name)


@app.command()
def prepare(
    params: ParamsOpt = Path("params.yaml"),
    raw: RawOpt = None,
    production: ProductionOpt = None,
    contract: ContractOpt = None,
    out: Annotated[OptPath, path_opt("Prepared data folder to write.", "paths.prepared")] = None,
    summary: Annotated[OptPath, path_opt("Row-count summary (DVC metrics) to write.", "paths.data_summary")] = None,
    name: ModelOpt = None,
) -> None:
    """Stage: merge production batches, split (seeded, stratified), fit preprocessing.

    Example: gitml prepare --out data/prepared
    """
    from gitml import api

    api.prepare(params, raw, production, contract, out, summary, model=name)


@app.command()
def train(
    params: ParamsOpt = Path("params.yaml"),
    data: PreparedOpt = None,
    out: Annotated[OptPath, path_opt("Model folder to write.", "paths.model")] = None,
    checkpoints: Annotated[OptPath, path_opt("Checkpoint folder (resume after a crash).", "paths.checkpoints")] = None,
    curves: Annotated[OptPath, path_opt("Per-epoch training curves (DVC plots) to write.", "paths.curves")] = None,
    summary: Annotated[OptPath, path_opt("Training summary (DVC metrics) to write.", "paths.train_summary")] = None,
    name: ModelOpt = None,
) -> None:
    """Stage: train the configured model family (model.*) with the trainer (trainer.*).

    Example: gitml train --params params.yaml --out models/model
    """
    from gitml import api

    api.train(params, data, out, checkpoints, curves, summary, model=name)


@app.command()
def evaluate(
    params: ParamsOpt = Path("params.yaml"),
    data: PreparedOpt = None,
    model: ModelDirOpt = None,
    metrics: Annotated[OptPath, path_opt("Metrics file (DVC metrics) to write.", "paths.metrics")] = None,
    plots: Annotated[OptPath, path_opt("Folder for plot data (DVC plots).", "paths.eval_plots")] = None,
    name: ModelOpt = None,
) -> None:
    """Stage: score the model on the held-out test split, overall and per slice.

    Example: gitml evaluate --model-dir models/model --metrics reports/metrics.json
    """
    from gitml import api

    api.evaluate(params, data, model, metrics, plots, model=name)


@gate_app.command("run")
def gate_run(
    params: ParamsOpt = Path("params.yaml"),
    bundle: Annotated[OptPath, path_opt("Packaged bundle to judge (verified first).", "paths.bundle")] = None,
    data: PreparedOpt = None,
    report: Annotated[OptPath, path_opt("Gate result (JSON) to write.", "paths.gate")] = None,
    markdown: Annotated[OptPath, path_opt("Gate table (markdown) to write.", "paths.gate_md")] = None,
    name: ModelOpt = None,
) -> None:
    """Stage: judge the packaged bundle on every gate rule (gate.*) and write the verdict; never fails the pipeline.

    The verdict names the bundle it judged (its id and manifest sha256): promote, fetch and
    deploy accept a bundle only with a passing verdict that names it.

    Example: gitml gate run && gitml gate verify
    """
    from gitml import api

    api.gate(params, bundle, data, report, markdown, model=name)


@gate_app.command("verify")
def gate_verify(
    report: Annotated[OptPath, path_opt("Gate result written by the gate stage.", "paths.gate")] = None,
    params: ParamsOpt = Path("params.yaml"),
    name: ModelOpt = None,
    alert: Annotated[bool, typer.Option(help="On a failure, also notify the webhooks listing gate_failed "
                                        "[alerts.webhooks] (promote.yml, on main).")] = False,
) -> None:
    """Exit 1 when the gate verdict is fail (or stale: the champion changed since it ran).

    Example: gitml gate verify --report reports/gate.json --alert
    """
    from gitml import api

    typer.echo(api.gate_verify(report, params, model=name, alert=alert))


@app.command()
def package(
    params: ParamsOpt = Path("params.yaml"),
    data: PreparedOpt = None,
    model: ModelDirOpt = None,
    contract: ContractOpt = None,
    metrics: MetricsInOpt = None,
    data_summary: DataSummaryOpt = None,
    out: Annotated[OptPath, path_opt("Bundle folder to write.", "paths.bundle")] = None,
    name: ModelOpt = None,
) -> None:
    """Stage: assemble the verified bundle (model, signature, metadata, reference, card, manifest).

    Example: gitml package --out models/bundle
    """
    from gitml import api

    api.package(params, out, model_dir=model, prepared_dir=data, contract=contract, metrics=metrics,
                data_summary=data_summary, model=name)


@app.command()
def predict(
    source: Annotated[Path, typer.Argument(help=(
        "Input rows: a UTF-8 .csv file with a header line, or a .parquet file, holding the bundle's "
        "feature columns. The label column, if still there, is ignored with a note; any other column "
        "outside the signature is refused."))],
    bundle: BundleOpt = None,
    out: Annotated[Path, typer.Option("-o", "--out", help=(
        "File to write; its extension picks the format: .csv, .parquet (or .pq), .json (one array of "
        "objects) or .jsonl (one object per line). Any other extension is refused before any work."))
    ] = Path("predictions.parquet"),
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows per streamed chunk.")] = 50_000,
    keep_columns: Annotated[bool, typer.Option(help="Copy the input's feature columns into the output.")] = False,
    name: ModelOpt = None,
) -> None:
    """Batch prediction: validate rows against the bundle's signature, stream, write CSV, Parquet or JSON.

    Columns written: prediction, then proba_<class> for each class. A file with a header and
    no rows gives an output with those columns and no rows; an empty (0-byte), binary or
    unreadable file is refused with what to do instead.

    Example: gitml predict --bundle models/bundle new_rows.csv -o scored.csv
    """
    from gitml import api

    rows = api.predict(bundle, source, out, chunk_rows, keep_columns, model=name)
    typer.echo(f"wrote {rows} predictions to {out}")


# ------------------------------------------------------------------------- schema


@schema_app.command("infer")
def schema_infer(
    source: Annotated[Path, typer.Argument(help="CSV or Parquet file (or snapshot folder).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Contract file to write (YAML).")],
    label: Annotated[str, typer.Option(help="Label column.")] = "target",
    range_margin: Annotated[float, typer.Option(help="Widen numeric ranges by this share.")] = 0.25,
    null_margin: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="A column with nulls may hold its observed null share plus this much.")] = 0.05,
    max_categories: Annotated[int, typer.Option(
        min=1, help="A text column with more levels than this, nearly all distinct, is an id (not a feature).")] = 50,
    task: Annotated[Optional[str], typer.Option(  # noqa: UP045
        metavar="TASK", help="binary, multiclass or regression (default: from the label's values: a "
                             "number with fractions or more than 20 values is regression).")] = None,
) -> None:
    """Infer a data contract from a trusted file, to review and declare in data.schema.path.

    Example: gitml schema infer data/external/churn.csv -o churn.schema.yaml --label churned --null-margin 0.1
    """
    from gitml import api

    api.infer_schema(source, out, label, range_margin, null_margin, max_categories, task)
    typer.echo(f"wrote {out}")
