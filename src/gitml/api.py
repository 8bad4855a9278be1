"""The verbs other Python code and tests import: short functions over the library.

Each verb loads configuration once and passes typed objects down; the CLI only parses
options and calls these.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def compose_params(
    conf_dir: str | Path = "conf", overrides: Sequence[str] = (),
    params_file: str | Path | None = "params.yaml",
) -> str:
    """Compose conf/ with overrides; write ``params_file`` (unless None); return the YAML text.

    Example:
        >>> compose_params("conf", ["model=logreg"])  # writes params.yaml
    """
    from gitml.config.compose import compose, render_params, write_params

    cfg = compose(conf_dir, overrides)
    if params_file is not None:
        write_params(cfg, params_file, overrides)
    return render_params(cfg, overrides)


def check_params(conf_dir: str | Path = "conf", params_file: str | Path = "params.yaml") -> None:
    """Raise ParamsOutOfSync when params.yaml differs from what conf/ composes to."""
    from gitml.config.compose import check_params as check

    check(conf_dir, params_file)


def load_params(params_file: str | Path = "params.yaml"):
    """Load and validate params.yaml into a typed :class:`gitml.config.schema.Config`."""
    from gitml.config.params import load_params as load

    return load(params_file)


def ingest(params_file: str | Path, out_dir: str | Path) -> Path:
    """Stage ``ingest``: write the raw snapshot from ``data.source``."""
    from gitml.stages.ingest import ingest as run

    return run(load_params(params_file).data, out_dir)


def validate(
    params_file: str | Path, raw_dir: str | Path, production_dir: str | Path,
    contract_out: str | Path, report_out: str | Path,
) -> dict[str, Any]:
    """Stage ``validate``: check every snapshot against the data contract."""
    from gitml.stages.validate import validate as run

    return run(load_params(params_file).data, raw_dir, production_dir, contract_out, report_out)


def prepare(
    params_file: str | Path, raw_dir: str | Path, production_dir: str | Path,
    contract_path: str | Path, out_dir: str | Path, summary_out: str | Path | None = None,
) -> dict[str, Any]:
    """Stage ``prepare``: merge batches, split, fit preprocessing, write Parquet."""
    from gitml.stages.prepare import prepare as run

    return run(load_params(params_file).data, raw_dir, production_dir, contract_path, out_dir, summary_out)


def train(
    params_file: str | Path, data_dir: str | Path, out_dir: str | Path,
    checkpoint_dir: str | Path | None, curves_out: str | Path, summary_out: str | Path | None = None,
) -> dict[str, Any]:
    """Stage ``train``: fit ``model.*`` with ``trainer.*`` and write the model folder."""
    from gitml.stages.train import train as run

    return run(load_params(params_file), data_dir, out_dir, checkpoint_dir, curves_out, summary_out)


def evaluate(
    params_file: str | Path, data_dir: str | Path, model_dir: str | Path,
    metrics_out: str | Path, plots_dir: str | Path,
) -> dict[str, Any]:
    """Stage ``evaluate``: metrics and plot data on the test split."""
    from gitml.models import config_trusted_types
    from gitml.stages.evaluate import evaluate as run

    cfg = load_params(params_file)
    return run(cfg.data, data_dir, model_dir, metrics_out, plots_dir, trusted_types=config_trusted_types(cfg.model))


def package_inputs(
    model_dir: str | Path = "models/model", prepared_dir: str | Path = "data/prepared",
    contract: str | Path = "data/contract.json", metrics: str | Path = "reports/metrics.json",
    data_summary: str | Path = "reports/data.json", lock: str | Path = "dvc.lock",
):
    """The pipeline outputs the package stage builds the bundle from, as one typed object."""
    from gitml.package.build import PackageInputs

    return PackageInputs(Path(model_dir), Path(prepared_dir), Path(contract), Path(metrics),
                         Path(data_summary), Path(lock))


def gate(params_file: str | Path, bundle_dir: str | Path, prepared_dir: str | Path, report_json: str | Path,
         report_md: str | Path):
    """Stage ``gate``: judge the packaged bundle on every rule; write reports/gate.json and gate.md."""
    from gitml.stages.gate import gate as run

    return run(load_params(params_file), Path(bundle_dir), Path(prepared_dir), Path(report_json), Path(report_md))


def gate_verify(report: str | Path = "reports/gate.json", params_file: str | Path = "params.yaml") -> str:
    """Raise GateFailed when the recorded verdict is fail or stale; else a one-line summary."""
    from gitml.registry.verify import verify_gate

    return verify_gate(Path(report), load_params(params_file))


def package(params_file: str | Path, inputs: Any, out_dir: str | Path) -> Path:
    """Stage ``package``: write the bundle atomically (the gate judges it next)."""
    from gitml.stages.package import package as run

    return run(load_params(params_file), inputs, out_dir)


def deploy(target: str | Path, version: str, bundle: str | Path | None = None, gate_file: str | Path | None = None,
           allow_failed_gate: bool = False, params_file: str | Path = "params.yaml",
           repo: str | Path = ".") -> tuple[str, list[str]]:
    """Publish ``bundle`` as ``version`` into ``target`` (or, without one, point back at ``version``).

    The bundle must be admitted by its gate verdict (serve/deployment.py ``gate_evidence``);
    with ``allow_failed_gate`` it is published anyway and the problems come back to be shown.
    Returns a one-line summary and those problems.
    """
    from gitml.package.bundle import load_bundle as load
    from gitml.serve.deployment import activate, gate_evidence, publish

    if bundle is None:
        activate(target, version)
        return f"{target}/current.json -> {version}", []
    from gitml.config.params import load_params_or_defaults

    model = load_params_or_defaults(params_file).registry.model
    evidence = gate_evidence(version, Path(gate_file) if gate_file else None, Path(repo), model)
    loaded = load(bundle, model=False)
    ignored = evidence.problems(loaded) if allow_failed_gate else []
    path = publish(loaded, target, version, gate=None if allow_failed_gate else evidence)
    return f"published {bundle} as {version}: {path}; {target}/current.json -> {version}", ignored


def load_bundle(path: str | Path):
    """Load and verify a bundle (manifest first)."""
    from gitml.package.bundle import load_bundle as load

    return load(path)


def predict(bundle_dir: str | Path, source: str | Path, out: str | Path, chunk_rows: int = 50_000,
            keep_columns: bool = False) -> int:
    """Batch prediction with a verified bundle; returns the row count."""
    from gitml.package.predict import predict_file

    return predict_file(load_bundle(bundle_dir), source, out, chunk_rows, keep_columns)


def promote(stage: str, bump: str = "auto", version: str | None = None, push: bool = False,
            params_file: str | Path = "params.yaml", repo: str | Path = "."):
    """Register HEAD (when needed) and assign ``stage``; see gitml.registry.promote."""
    from gitml.gitops.git import repo_root
    from gitml.registry.promote import promote as run

    root = repo_root(repo)
    return run(root, load_params(root / params_file).registry, stage, bump, version, push,
               gate_report=root / "reports/gate.json")


def fetch(out: str | Path, stage: str | None = None, version: str | None = None,
          params_file: str | Path = "params.yaml", repo: str | Path = "."):
    """Fetch and verify the bundle of a stage or version and its chain; returns the resolved version.

    With the remote ``registry.remote`` present, the remote's stage-tag deletions are
    taken first and the version's commit must be on the remote's default branch. A stage
    in ``registry.signed_stages`` must have an assignment tag signed by a key in
    ``registry.allowed_signers``.
    """
    from gitml.gitops.git import repo_root
    from gitml.registry.fetch import fetch_bundle, signers_for, synced_remote

    root = repo_root(repo)
    registry = load_params(root / params_file).registry
    remote = synced_remote(root, registry)
    found, _ = fetch_bundle(root, registry.model, out, stage, version, remote=remote,
                            allowed_signers=signers_for(root, registry, stage))
    return found


def registry_which(stage: str, params_file: str | Path = "params.yaml", repo: str | Path = ".") -> str:
    """The version assigned to ``stage``; raises GitmlError when there is none.

    Like ``fetch``: the remote's stage-tag deletions first, and a stage in
    ``registry.signed_stages`` must have a verified assignment tag.
    """
    from gitml.gitops.git import repo_root
    from gitml.registry.fetch import resolve, signers_for, synced_remote
    from gitml.registry.signing import check_stage_signed

    root = repo_root(repo)
    registry = load_params(root / params_file).registry
    synced_remote(root, registry)
    found = resolve(root, registry.model, stage=stage)
    signers = signers_for(root, registry, stage)
    if signers is not None:
        check_stage_signed(root, registry.model, stage, found.tag, signers)
    return found.version


def report(base: str, out: str | Path, plots: str | Path | None = None, repo: str | Path = ".") -> Path:
    """Write the pull-request markdown report (see gitml.ci.report)."""
    from gitml.ci.report import pr_report
    from gitml.utils.atomic import write_text

    return write_text(out, pr_report(base, Path(repo), plots_out=Path(plots) if plots else None))


def registry_show(params_file: str | Path = "params.yaml", repo: str | Path = ".") -> str:
    from gitml.gitops.git import repo_root
    from gitml.registry.tags import list_versions

    root = repo_root(repo)
    name = load_params(root / params_file).registry.model
    versions = list_versions(root, name)
    if not versions:
        return f"no version of '{name}' is registered yet (gitml promote --stage ...)"
    lines = [f"{'model':<16} {'version':<10} {'stages':<20} commit", "-" * 60]
    lines += [f"{v.name:<16} {v.version:<10} {','.join(v.stages) or '-':<20} {v.commit[:10]}" for v in versions]
    return "\n".join(lines)


def registry_history(params_file: str | Path = "params.yaml", repo: str | Path = ".") -> str:
    from gitml.gitops.git import repo_root
    from gitml.registry.tags import history

    root = repo_root(repo)
    events = history(root, load_params(root / params_file).registry.model)
    if not events:
        return "no registry events yet"
    lines = [f"{'time':<26} {'event':<13} {'version':<10} {'stage':<10} commit", "-" * 76]
    lines += [f"{e['timestamp']!s:<26} {e['event']:<13} {e['version']:<10} {e.get('stage') or '-':<10} "
              f"{e['commit'][:10]}" for e in events]
    return "\n".join(lines)


def infer_schema(source: str | Path, out: str | Path, label: str, range_margin: float = 0.25) -> Path:
    """Infer a data contract from a trusted CSV/Parquet file or snapshot folder."""
    import pandas as pd
    import yaml

    from gitml.data.contract import infer_contract
    from gitml.data.snapshots import read_snapshots
    from gitml.data.sources import snake_case
    from gitml.utils.atomic import write_text

    source = Path(source)
    if source.is_dir():
        frame = read_snapshots(source)
    elif source.suffix == ".csv":
        frame = pd.read_csv(source)
    else:
        frame = pd.read_parquet(source)
    frame.columns = [snake_case(c) for c in frame.columns]
    contract = infer_contract(frame, snake_case(label), range_margin)
    return write_text(out, yaml.safe_dump(contract.to_dict(), sort_keys=False))


def summary(data_summary: str | Path = "reports/data.json", reports: str | Path = "reports",
            bundle: str | Path = "models/bundle") -> str:
    """A short human summary of the last run: rows, metrics, gate, where outputs went."""
    lines = ["", "gitml pipeline summary", "----------------------"]
    data_summary, reports, bundle = Path(data_summary), Path(reports), Path(bundle)
    if data_summary.is_file():
        info = json.loads(data_summary.read_text())
        rows = info["rows"]
        lines.append(
            f"data     {rows['total']} rows ({rows['raw']} raw + {rows['production']} production)"
            f" -> train {rows['train']} / val {rows['val']} / test {rows['test']};"
            f" {info['features']['columns']} columns -> {info['features']['encoded']} features"
        )
    train = reports / "train.json"
    if train.is_file():
        info = json.loads(train.read_text())["train"]
        lines.append(f"train    {info['family']} on {info['device']}: {info['epochs']} epoch(s)"
                     + (f", resumed after epoch {info['resumed_from_epoch']}" if info.get("resumed_from_epoch") else ""))
    metrics = reports / "metrics.json"
    if metrics.is_file():
        test = json.loads(metrics.read_text()).get("test", {})
        keys = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss")
        lines.append("metrics  test: " + ", ".join(f"{k} {test[k]:.4f}" for k in keys if k in test))
    gate = reports / "gate.json"
    if gate.is_file():
        result = json.loads(gate.read_text())
        failed = [r["rule"] for r in result.get("rules", []) if r.get("verdict") == "fail"]
        lines.append(f"gate     {result.get('verdict', '?').upper()} ({len(result.get('rules', []))} rules"
                     + (f"; failed: {'; '.join(failed)}" if failed else "") + ") -> reports/gate.md")
    if bundle.is_dir():
        from gitml.package.bundle import load_bundle as load

        packaged = load(bundle, model=False)
        lines.append(f"bundle   {bundle}/ (id {packaged.id}; sha256 manifest of {len(packaged.manifest['files'])} files)")
    lines.append("outputs  data/prepared/, models/model/, reports/ (metrics, plots, gate)")
    lines.append("next     dvc metrics show | dvc plots show | dvc exp run -S model=hgb | "
                 "gitml promote --stage staging")
    return "\n".join(lines) + "\n"


def doctor(path: str | Path = ".", params_file: str | Path = "params.yaml", conf_dir: str | Path = "conf",
           raise_errors: bool = False):
    """Check this machine and repository for the gitml loop; a list of ok/warn/fail results.

    Example:
        >>> failed = [c for c in doctor(".") if c.status == "fail"]
    """
    from gitml.doctor import diagnose

    return diagnose(path, params_file, conf_dir, raise_errors)
