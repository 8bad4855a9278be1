# Over 300 lines: every public verb in one module, as GTO's api.py, each a few lines over the library.
"""The verbs other Python code and tests import: short functions over the library.

Each verb loads configuration once and passes typed objects down; the CLI only parses
options and calls these.
"""

from __future__ import annotations

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
    """Infer a data contract from a trusted CSV/Parquet file or snapshot folder; write it to ``out``."""
    from gitml.data.contract import infer_contract_file

    return infer_contract_file(source, out, label, range_margin)

def summary(data_summary: str | Path = "reports/data.json", reports: str | Path = "reports",
            bundle: str | Path = "models/bundle") -> str:
    """A short human summary of the last run: rows, metrics, gate, where outputs went."""
    from gitml.ci.summary import render_summary

    return render_summary(Path(data_summary), Path(reports), Path(bundle))


def serve(*, bundle: str | Path | None = None, deployment: str | Path | None = None, stage: str | None = None,
          follow: bool = False, repo: str | Path = ".", params_file: str | Path | None = None,
          host: str | None = None, port: int | None = None, workers: int | None = None,
          log_dir: str | Path | None = None) -> None:
    """Run the model server until stopped: serve.* and registry.* from params, the arguments on top."""
    import dataclasses

    from gitml.config.params import load_params_or_defaults
    from gitml.errors import UsageError
    from gitml.serve.server import run
    from gitml.serve.state import ServeSettings

    params = load_params_or_defaults(params_file)
    cfg, registry = params.serve, params.registry
    refused = registry.unknown_stage(stage) if stage is not None else None
    if refused:
        raise UsageError(f"Invalid value for '--stage': {refused}")
    overrides: dict[str, Any] = {"host": host, "port": port, "workers": workers,
                                 "log_dir": str(log_dir) if log_dir else None}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    repo = Path(repo)
    run(ServeSettings(
        bundle=str(bundle) if bundle else None, deployment=str(deployment) if deployment else None,
        stage=stage, follow=follow, repo=str(repo), registry_name=registry.model,
        registry_remote=registry.remote if stage else None, cfg=cfg,
        registry_allowed_signers=str(repo / registry.allowed_signers) if stage in registry.signed_stages else None,
    ))


def simulate(url: str, batches: int, batch_rows: int, source: str = "synthetic", shift: float = 0.0, seed: int = 0,
             data_dir: str | Path = "data/prepared", params_file: str | Path | None = None, feedback: bool = True):
    """Send batches of rows (and their labels) to a running server; the result counts failures."""
    from gitml.serve.simulate import simulate as run

    return run(url, batches, batch_rows, source, shift, seed, data_dir, params_file, feedback)


def drift_check(bundle: str | Path, log_dir: str | Path, out: str | Path, cache: str | Path | None = None,
                params_file: str | Path | None = None, *, detector: str | None = None, window_rows: int | None = None,
                window_hours: float | None = None, p_val: float | None = None, plots: bool = False):
    """Test the recent request log for drift; the report's exit_code is 0, 1 or 2.

    Any failure to reach a verdict (settings, bundle, log) is a DriftCheckError (exit 2),
    and no earlier verdict is left in ``out`` for retrain-pr to act on.
    """
    from gitml.errors import DriftCheckError, GitmlError

    try:
        from gitml.monitor.check import drift_check as check
        from gitml.monitor.settings import load_drift_config

        cfg = load_drift_config(params_file, detector=detector, window_rows=window_rows,
                                window_hours=window_hours, p_val=p_val)
        return check(bundle, log_dir, cfg, out, cache, plots=plots)
    except DriftCheckError:
        raise
    except GitmlError as exc:
        from gitml.monitor.report import clear_report

        clear_report(Path(out))
        raise DriftCheckError(str(exc)) from exc


def retrain_pr(params_file: str | Path, report_dir: str | Path, log_dir: str | Path, bundle: str | Path,
               repo_slug: str | None, forge_url: str | None = None, base: str = "main", label: str = "retrain",
               remote: str = "origin"):
    """On drift, add the labelled production rows as a DVC batch and open or update the retraining PR."""
    from gitml.gitops.retrain import retrain_from_files

    return retrain_from_files(params_file=Path(params_file), report_dir=Path(report_dir), log_dir=Path(log_dir),
                              bundle_dir=Path(bundle), repo_slug=repo_slug, forge_url=forge_url, base=base,
                              label=label, remote=remote)


def comment(pr: int, body_file: str | Path, marker: str = "ci-report", repo_slug: str | None = None,
            forge_url: str | None = None):
    """Post a comment on pull request ``pr``, or edit the sticky one carrying ``marker``."""
    from gitml.errors import GitmlError
    from gitml.gitops.forge import GitHubForge

    if not repo_slug:
        raise GitmlError("No repository: pass --repo-slug owner/name or set GITHUB_REPOSITORY.")
    body_file = Path(body_file)
    if not body_file.is_file():
        raise GitmlError(f"Comment body file '{body_file}' not found.")
    body = body_file.read_text(encoding="utf-8")
    with GitHubForge(repo_slug, base_url=forge_url) as forge:
        return forge.upsert_sticky_comment(pr, marker, body) if marker else forge.comment(pr, body)


def doctor(path: str | Path = ".", params_file: str | Path = "params.yaml", conf_dir: str | Path = "conf",
           raise_errors: bool = False):
    """Check this machine and repository for the gitml loop; a list of ok/warn/fail results.

    Example:
        >>> failed = [c for c in doctor(".") if c.status == "fail"]
    """
    from gitml.doctor import diagnose

    return diagnose(path, params_file, conf_dir, raise_errors)
