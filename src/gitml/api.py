# Over 300 lines: every public verb in one module, as GTO's api.py, each a few lines over the library.
"""The verbs other Python code and tests import: short functions over the library.

Each verb loads configuration once and passes typed objects down; the CLI only parses
options and calls these.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitml.config.compose import InSync


def compose_params(
    conf_dir: str | Path = "conf", overrides: Sequence[str] = (),
    params_file: str | Path | None = "params.yaml",
) -> str:
    """Compose conf/ with overrides; write ``params_file`` (unless None); return the YAML text.

    With ``conf/models/*.yaml``, each model is composed too, under ``models.<name>``.

    Example:
        >>> compose_params("conf", ["model=logreg"])  # writes params.yaml
    """
    from gitml.config.compose import compose_project, render_params, write_params

    cfg = compose_project(conf_dir, overrides)
    if params_file is not None:
        write_params(cfg, params_file, overrides)
    return render_params(cfg, overrides)


def check_params(conf_dir: str | Path = "conf", params_file: str | Path = "params.yaml") -> InSync:
    """Raise ParamsOutOfSync when params.yaml differs from what conf/ composes to (with the
    overrides its header records, or that `dvc exp run -S` applied: see config/explain.py)."""
    from gitml.config.compose import check_params as check

    return check(conf_dir, params_file)


def load_params(params_file: str | Path = "params.yaml", model: str | None = None):
    """Load and validate params.yaml into a typed :class:`gitml.config.schema.Config`.

    ``model``: in a repository of several models (conf/models/), the one whose section to read.
    """
    from gitml.config.params import load_params as load

    return load(params_file, model)


def ingest(params_file: str | Path, out_dir: str | Path | None = None, model: str | None = None) -> Path:
    """Stage ``ingest``: write the raw snapshot from ``data.source`` (default: ``paths.raw``)."""
    from gitml.config.paths import or_default
    from gitml.stages.ingest import ingest as run

    cfg = load_params(params_file, model)
    return run(cfg.data, or_default(out_dir, cfg.paths.raw))


def validate(
    params_file: str | Path, raw_dir: str | Path | None = None, production_dir: str | Path | None = None,
    contract_out: str | Path | None = None, report_out: str | Path | None = None, model: str | None = None,
) -> dict[str, Any]:
    """Stage ``validate``: check every snapshot against the data contract; a None path is ``paths.*``."""
    from gitml.config.paths import or_default as pick
    from gitml.stages.validate import validate as run

    cfg = load_params(params_file, model)
    paths = cfg.paths
    return run(cfg.data, pick(raw_dir, paths.raw), pick(production_dir, paths.production),
               pick(contract_out, paths.contract), pick(report_out, paths.validation))


def prepare(
    params_file: str | Path, raw_dir: str | Path | None = None, production_dir: str | Path | None = None,
    contract_path: str | Path | None = None, out_dir: str | Path | None = None,
    summary_out: str | Path | None = None, model: str | None = None,
) -> dict[str, Any]:
    """Stage ``prepare``: merge batches, split, fit preprocessing, write Parquet; a None path is ``paths.*``."""
    from gitml.config.paths import or_default as pick
    from gitml.stages.prepare import prepare as run

    cfg = load_params(params_file, model)
    paths = cfg.paths
    return run(cfg.data, pick(raw_dir, paths.raw), pick(production_dir, paths.production),
               pick(contract_path, paths.contract), pick(out_dir, paths.prepared),
               pick(summary_out, paths.data_summary))


def train(
    params_file: str | Path, data_dir: str | Path | None = None, out_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None, curves_out: str | Path | None = None,
    summary_out: str | Path | None = None, model: str | None = None,
) -> dict[str, Any]:
    """Stage ``train``: fit ``model.*`` with ``trainer.*`` and write the model folder; a None path is ``paths.*``."""
    from gitml.config.paths import or_default as pick
    from gitml.stages.train import train as run

    cfg = load_params(params_file, model)
    paths = cfg.paths
    return run(cfg, pick(data_dir, paths.prepared), pick(out_dir, paths.model),
               pick(checkpoint_dir, paths.checkpoints), pick(curves_out, paths.curves),
               pick(summary_out, paths.train_summary))


def evaluate(
    params_file: str | Path, data_dir: str | Path | None = None, model_dir: str | Path | None = None,
    metrics_out: str | Path | None = None, plots_dir: str | Path | None = None, model: str | None = None,
) -> dict[str, Any]:
    """Stage ``evaluate``: metrics and plot data on the test split; a None path is ``paths.*``."""
    from gitml.config.paths import or_default as pick
    from gitml.models import config_trusted_types
    from gitml.stages.evaluate import evaluate as run

    cfg = load_params(params_file, model)
    paths = cfg.paths
    return run(cfg.data, pick(data_dir, paths.prepared), pick(model_dir, paths.model),
               pick(metrics_out, paths.metrics), pick(plots_dir, paths.eval_plots),
               trusted_types=config_trusted_types(cfg.model))


def package_inputs(
    model_dir: str | Path | None = None, prepared_dir: str | Path | None = None,
    contract: str | Path | None = None, metrics: str | Path | None = None,
    data_summary: str | Path | None = None, lock: str | Path = "dvc.lock", paths: Any = None,
    model: str | None = None,
):
    """The pipeline outputs the package stage builds the bundle from, as one typed object.

    A None path is the one ``paths`` (a :class:`~gitml.config.paths.PathsConfig`; default:
    the built-in layout) names; ``lock`` is DVC's own file name, not layout. ``model``: in a
    repository of several models, the one whose stages (``train@<model>``) dvc.lock names.
    """
    from gitml.config.paths import PathsConfig
    from gitml.config.paths import or_default as pick
    from gitml.package.build import PackageInputs

    paths = paths or PathsConfig()
    return PackageInputs(pick(model_dir, paths.model), pick(prepared_dir, paths.prepared),
                         pick(contract, paths.contract), pick(metrics, paths.metrics),
                         pick(data_summary, paths.data_summary), Path(lock), stages_of=model)


def gate(params_file: str | Path, bundle_dir: str | Path | None = None, prepared_dir: str | Path | None = None,
         report_json: str | Path | None = None, report_md: str | Path | None = None, model: str | None = None):
    """Stage ``gate``: judge the packaged bundle on every rule; write ``paths.gate`` and ``paths.gate_md``."""
    from gitml.config.paths import or_default as pick
    from gitml.stages.gate import gate as run

    cfg = load_params(params_file, model)
    paths = cfg.paths
    return run(cfg, pick(bundle_dir, paths.bundle), pick(prepared_dir, paths.prepared),
               pick(report_json, paths.gate), pick(report_md, paths.gate_md))


def gate_verify(report: str | Path | None = None, params_file: str | Path = "params.yaml", model: str | None = None,
                alert: bool = False) -> str:
    """Raise GateFailed when the recorded verdict (default: ``paths.gate``) is fail or stale; else a one-line summary.

    ``alert``: a failure also notifies the ``alerts.webhooks`` that list ``gate_failed`` (gitml/alerts.py).
    """
    from gitml.config.paths import or_default
    from gitml.errors import GateFailed
    from gitml.registry.verify import verify_gate

    cfg = load_params(params_file, model)
    try:
        return verify_gate(or_default(report, cfg.paths.gate), cfg)
    except GateFailed as exc:
        if alert:
            from gitml.alerts import alert_gate_failed

            alert_gate_failed(cfg, str(exc))
        raise


def package(params_file: str | Path, out_dir: str | Path | None = None, *, model_dir: str | Path | None = None,
            prepared_dir: str | Path | None = None, contract: str | Path | None = None,
            metrics: str | Path | None = None, data_summary: str | Path | None = None, model: str | None = None) -> Path:
    """Stage ``package``: write the bundle atomically (the gate judges it next); a None path is ``paths.*``."""
    from gitml.config.paths import or_default
    from gitml.stages.package import package as run

    cfg = load_params(params_file, model)
    inputs = package_inputs(model_dir, prepared_dir, contract, metrics, data_summary, paths=cfg.paths,
                            model=_several(params_file, model))
    return run(cfg, inputs, or_default(out_dir, cfg.paths.bundle))


def deploy(target: str | Path, version: str, bundle: str | Path | None = None, gate_file: str | Path | None = None,
           allow_failed_gate: bool = False, params_file: str | Path | None = "params.yaml",
           repo: str | Path = ".", model: str | None = None, point: bool = True) -> tuple[str, list[str]]:
    """Publish ``bundle`` as ``version`` into ``target`` (or, without one, point back at ``version``).

    The bundle must be admitted by its gate verdict (serve/deployment.py ``gate_evidence``);
    with ``allow_failed_gate`` it is published anyway and the problems come back to be shown.
    ``point=False``: publish only; what the target serves does not change.
    Returns a one-line summary and those problems.
    """
    from gitml.package.bundle import load_bundle as load
    from gitml.serve.deployment import activate, gate_evidence, publish

    if bundle is None:
        activate(target, version)
        return f"{target}/current.json -> {version}", []
    from gitml.config.params import load_params_or_defaults

    name = load_params_or_defaults(params_file, model).registry.model
    evidence = gate_evidence(version, Path(gate_file) if gate_file else None, Path(repo), name)
    loaded = load(bundle, model=False)
    ignored = evidence.problems(loaded) if allow_failed_gate else []
    path = publish(loaded, target, version, gate=None if allow_failed_gate else evidence, point=point)
    serving = f"; {target}/current.json -> {version}" if point else " (what the target serves is unchanged)"
    return f"published {bundle} as {version}: {path}{serving}", ignored


def deploy_canary(target: str | Path, version: str, percent: int, shadow: str | None = None,
                  bundle: str | Path | None = None, gate_file: str | Path | None = None,
                  allow_failed_gate: bool = False, params_file: str | Path | None = "params.yaml",
                  repo: str | Path = ".", model: str | None = None) -> tuple[str, list[str]]:
    """Write ``deploy/<model>.yaml``: ``percent`` of requests to ``version``, the rest to the stable
    version (the file's, else the one ``target`` serves), ``shadow`` logged beside; commit it in a
    pull request. With ``bundle``, ``version`` is published into ``target`` first (serving nothing yet).

    Example:
        >>> deploy_canary("/srv/gitml/churn", "v1.2.0", 10, shadow="v1.3.0", model="churn")
    """
    from gitml.config.params import load_params_or_defaults
    from gitml.errors import DeploymentError
    from gitml.gitops.git import repo_root
    from gitml.serve.delivery import canary_split, stable_version, traffic_file, unknown_versions
    from gitml.serve.traffic import KEY_HEADER, read_traffic_file, write_traffic_file

    ignored: list[str] = []
    if bundle is not None:
        _, ignored = deploy(target, version, bundle, gate_file, allow_failed_gate, params_file, repo, model,
                            point=False)
    name = load_params_or_defaults(params_file, model).registry.model
    root = repo_root(repo)
    file = traffic_file(root, name)
    stable, where = stable_version(file, target)
    key = read_traffic_file(file).key if file.is_file() else KEY_HEADER  # a key chosen in the file stays
    split = canary_split(stable, version, percent, shadow, key)
    unknown = unknown_versions(target, split, root, name)
    if unknown:
        raise DeploymentError(f"{', '.join(unknown)}: neither published in {target} nor a registered version of "
                              f"'{name}' (`gitml registry show`); publish it with --bundle, or register it first.")
    write_traffic_file(file, split, name)
    shares = ", ".join(f"{v} {p}%" for v, p in split.weights) + (f", shadow {shadow}" if shadow else "")
    return (f"wrote {file}: {shares} (stable {stable} from {where}); commit it in a pull request, and "
            f"`gitml deploy --traffic {file} --target {target}` applies it"), ignored


def deploy_traffic(target: str | Path, traffic: str | Path, params_file: str | Path | None = "params.yaml",
                   repo: str | Path = ".", model: str | None = None, stage: str | None = None,
                   push: bool = False) -> str:
    """Apply a committed traffic file to ``target``: versions it names that the target lacks are fetched
    from the registry and published (verified, gate-admitted), then the split (atomically).

    ``stage`` (e.g. prod): when the file sends every request to one version, that version is assigned
    the stage afterwards (pushed with ``push``), so the registry names what is served; it must then be a
    registered version, checked before anything changes.
    """
    import tempfile

    from gitml.errors import DeploymentError, GitmlError, PromotionError
    from gitml.serve.delivery import missing_versions
    from gitml.serve.deployment import publish_split
    from gitml.serve.traffic import read_traffic_file

    split = read_traffic_file(traffic)
    settled = split.served[0] if stage is not None and len(split.served) == 1 else None
    if stage is not None:
        _check_stage_version(stage, settled, traffic, params_file, repo, model)
    for version in missing_versions(target, split):
        with tempfile.TemporaryDirectory(prefix="gitml-traffic-") as work:
            try:
                fetch(Path(work) / version, version=version, params_file=params_file or "params.yaml", repo=repo,
                      model=model)
            except GitmlError as exc:
                raise DeploymentError(f"{traffic} names {version}, which is not published in {target} and could "
                                      f"not be fetched from the registry: {exc}") from exc
            deploy(target, version, Path(work) / version, params_file=params_file, repo=repo, model=model,
                   point=False)
    publish_split(target, split)
    shares = ", ".join(f"{v} {p}%" for v, p in split.weights) + (f", shadow {split.shadow}" if split.shadow else "")
    applied = f"{target}/traffic.json: {shares}; current.json -> {split.stable}"
    if settled is None or stage is None:
        return applied
    try:
        promotion = promote(stage, version=settled, push=push, params_file=params_file or "params.yaml",
                            repo=repo, model=model)
    except GitmlError as exc:
        raise PromotionError(f"{applied}, but {settled} was not assigned '{stage}': {exc} Rerun the command: applying "
                        "the file again changes nothing.") from exc
    assigned = promotion.describe() if promotion.tags else f"{settled} already in '{stage}'"
    return f"{applied}; {assigned}"


def _check_stage_version(stage: str, version: str | None, traffic: str | Path, params_file: str | Path | None,
                         repo: str | Path, model: str | None) -> None:
    """Refuse, before the traffic changes, a stage the registry lacks or a version (the one the file
    sends every request to, if any) it does not know."""
    from gitml.config.params import load_params_or_defaults
    from gitml.errors import PromotionError
    from gitml.gitops.git import repo_root
    from gitml.registry.tags import find_version

    registry = load_params_or_defaults(params_file, model).registry
    refused = registry.unknown_stage(stage)
    if refused:
        raise PromotionError(f"--stage: {refused}")
    if version is not None and find_version(repo_root(repo), registry.model, version) is None:
        raise PromotionError(f"{traffic} sends every request to {version}, which is not a registered version of "
                             f"'{registry.model}' (`gitml registry show`): it cannot be assigned '{stage}'. "
                             "Nothing was changed.")


def deploy_k8s(out: str | Path, version: str | None = None, image: str | None = None, replicas: int = 1,
               cpu: str = "1", memory: str = "2Gi", stage: str = "prod", params_file: str | Path | None = None,
               repo: str | Path = ".", model: str | None = None) -> tuple[str, list[Path]]:
    """Write Kubernetes and KServe manifests for a registered version (default: ``stage``'s) into ``out``.

    ``image``: the repository the image of that version is pushed to (default ``gitml-<registry.model>``);
    its tag is the version. ``params_file`` (registry.model): default, the repository's params.yaml
    when it has one, else the defaults. Returns the version and the files written (see gitml.serve.k8s).
    """
    from gitml.config.params import load_params_or_defaults
    from gitml.gitops.git import repo_root
    from gitml.serve.k8s import K8sSpec, registered_version, write_manifests

    root = repo_root(repo)
    if params_file is None and (root / "params.yaml").is_file():
        params_file = root / "params.yaml"
    name = load_params_or_defaults(params_file, model).registry.model
    resolved = registered_version(root, name, version, stage)
    spec = K8sSpec(name, resolved, image or f"gitml-{name}", replicas, cpu, memory)
    return resolved, write_manifests(out, spec)


def load_bundle(path: str | Path):
    """Load and verify a bundle (manifest first)."""
    from gitml.package.bundle import load_bundle as load

    return load(path)


def predict(bundle_dir: str | Path | None, source: str | Path, out: str | Path, chunk_rows: int = 50_000,
            keep_columns: bool = False, params_file: str | Path | None = None, model: str | None = None) -> int:
    """Batch prediction with a verified bundle (default: ``paths.bundle``); returns the row count.

    ``out``'s extension picks the format (.csv, .parquet, .json, .jsonl). The output
    extension and the input file are checked before the bundle is read, and the model is
    built only when the first rows arrive.
    """
    from gitml.package.bundle import load_bundle as load
    from gitml.package.predict import input_format, output_format, predict_file

    output_format(out)
    input_format(source)
    bundle = bundle_dir if bundle_dir is not None else project_paths(params_file, model).bundle
    return predict_file(load(bundle, model=False), source, out, chunk_rows, keep_columns)


def promote(stage: str, bump: str = "auto", version: str | None = None, push: bool = False,
            params_file: str | Path = "params.yaml", repo: str | Path = ".", model: str | None = None):
    """Register HEAD (when needed) and assign ``stage``; see gitml.registry.promote."""
    from gitml.alerts import alert_promotion
    from gitml.gitops.git import repo_root
    from gitml.registry.promote import promote as run

    root = repo_root(repo)
    cfg = load_params(root / params_file, model)
    promotion = run(root, cfg.registry, stage, bump, version, push, gate_report=root / cfg.paths.gate,
                    paths=cfg.paths, stages_of=_several(root / params_file, model))
    alert_promotion(cfg, promotion)  # alerts.webhooks listing 'promotion'; never raises
    return promotion


def fetch(out: str | Path, stage: str | None = None, version: str | None = None,
          params_file: str | Path = "params.yaml", repo: str | Path = ".", model: str | None = None):
    """Fetch and verify the bundle of a stage or version and its chain; returns the resolved version.

    With the remote ``registry.remote`` present, the remote's stage-tag deletions are
    taken first and the version's commit must be on the remote's default branch. A stage
    in ``registry.signed_stages`` must have an assignment tag signed by a key in
    ``registry.allowed_signers``.
    """
    from gitml.gitops.git import repo_root
    from gitml.registry.fetch import fetch_bundle, signers_for, synced_remote

    root = repo_root(repo)
    registry = _registry(root, params_file, model)
    remote = synced_remote(root, registry)
    found, _ = fetch_bundle(root, registry.model, out, stage, version, remote=remote,
                            allowed_signers=signers_for(root, registry, stage))
    return found


def registry_which(stage: str, params_file: str | Path = "params.yaml", repo: str | Path = ".",
                   model: str | None = None) -> str:
    """The version assigned to ``stage``; raises GitmlError when there is none.

    Like ``fetch``: the remote's stage-tag deletions first, and a stage in
    ``registry.signed_stages`` must have a verified assignment tag.
    """
    from gitml.gitops.git import repo_root
    from gitml.registry.fetch import resolve, signers_for, synced_remote
    from gitml.registry.signing import check_stage_signed

    root = repo_root(repo)
    registry = _registry(root, params_file, model)
    synced_remote(root, registry)
    found = resolve(root, registry.model, stage=stage)
    signers = signers_for(root, registry, stage)
    if signers is not None:
        check_stage_signed(root, registry.model, stage, found.tag, signers)
    return found.version


def report(base: str, out: str | Path | None = None, plots: str | Path | None = None, repo: str | Path = ".",
           params_file: str | Path | None = None, model: str | None = None) -> Path:
    """Write the pull-request markdown report (see gitml.ci.report); ``out``, ``plots``: default ``paths.pr_*``."""
    from gitml.ci.report import pr_report
    from gitml.utils.atomic import write_text

    paths = project_paths(params_file, model)
    plots_out = Path(plots if plots is not None else paths.pr_plots)
    several = _several(params_file if params_file is not None else Path(repo) / "params.yaml", model)
    return write_text(out if out is not None else paths.pr_report,
                      pr_report(base, Path(repo), paths, plots_out=plots_out, model=several))


def registry_show(params_file: str | Path = "params.yaml", repo: str | Path = ".", model: str | None = None,
                  all_models: bool = False) -> str:
    """The registered versions of ``model`` (default ``registry.model``), or of every model."""
    from gitml.gitops.git import repo_root
    from gitml.registry.tags import all_versions, list_versions

    root = repo_root(repo)
    if all_models:
        versions = [v for found in all_versions(root).values() for v in found]
        if not versions:
            return "no version of any model is registered yet (gitml promote --stage ...)"
    else:
        name = _registry(root, params_file, model).model
        versions = list_versions(root, name)
        if not versions:
            return f"no version of '{name}' is registered yet (gitml promote --stage ...)"
    # The bundle records neither commit nor build time (package/build.py); the tags carry both.
    width = max(16, *(len(v.name) + 1 for v in versions))
    lines = [f"{'model':<{width}} {'version':<10} {'stages':<20} {'commit':<10} registered", "-" * (70 + width)]
    lines += [f"{v.name:<{width}} {v.version:<10} {','.join(v.stages) or '-':<20} {v.commit[:10]:<10} "
              f"{v.created_at or '-'}" for v in versions]
    return "\n".join(lines)


def registry_history(params_file: str | Path = "params.yaml", repo: str | Path = ".", model: str | None = None) -> str:
    from gitml.gitops.git import repo_root
    from gitml.registry.tags import history

    root = repo_root(repo)
    events = history(root, _registry(root, params_file, model).model)
    if not events:
        return "no registry events yet"
    lines = [f"{'time':<26} {'event':<13} {'version':<10} {'stage':<10} commit", "-" * 76]
    lines += [f"{e['timestamp']!s:<26} {e['event']:<13} {e['version'] or '-':<10} {e.get('stage') or '-':<10} "
              f"{e['commit'][:10]}" for e in events]
    return "\n".join(lines)


def _registry(root: Path, params_file: str | Path, model: str | None):
    """params.yaml's ``registry``, for the artifact ``model`` when one is named (``--model``).

    In a repository of several models, ``model`` must be one of them (its own ``registry``);
    with one model, it may name any artifact in the registry.
    """
    import dataclasses
    import re

    from gitml.config.models import declared_in
    from gitml.config.rules import GTO_NAME
    from gitml.errors import GitmlError

    if model is None or declared_in(root / params_file):
        return load_params(root / params_file, model).registry
    if not re.fullmatch(GTO_NAME, model):
        raise GitmlError(f"--model {model!r} is not a registry name: letters, digits, '-', '_' and '/', "
                         "starting and ending with a letter or digit.")
    return dataclasses.replace(load_params(root / params_file).registry, model=model)


def _several(params_file: str | Path, model: str | None) -> str | None:
    """``model`` when ``params_file`` declares several models (its stages are ``<stage>@<model>``), else None."""
    from gitml.config.models import declared_in

    return model if model is not None and declared_in(Path(params_file)) else None


def project_paths(params_file: str | Path | None = None, model: str | None = None):
    """``paths`` of ``params_file`` (default: ./params.yaml when present, else the built-in layout)."""
    return _params_or_defaults(params_file, model).paths


def _params_or_defaults(params_file: str | Path | None, model: str | None = None):
    from gitml.config.params import load_params_or_defaults

    return load_params_or_defaults(params_file, model)


def infer_schema(source: str | Path, out: str | Path, label: str, range_margin: float = 0.25,
                 null_margin: float = 0.05, max_categories: int = 50, task: str | None = None) -> Path:
    """Infer a data contract from a trusted CSV/Parquet file or snapshot folder; write it to ``out``.

    ``null_margin``: a column with nulls may hold its observed null share plus this much;
    ``max_categories``: a text column with more levels (and nearly all distinct) is an id;
    ``task``: binary, multiclass or regression (None: inferred from the label, and said so).
    """
    from gitml.data.infer import infer_contract_file

    return infer_contract_file(source, out, label, range_margin, null_margin=null_margin,
                               max_categories=max_categories, task=task)


def summary(params_file: str | Path | None = None, model: str | None = None) -> str:
    """A short human summary of the last run: rows, metrics, gate, where outputs went (from ``paths``).

    In a repository of several models, without ``model``: every model's, one after another.
    """
    from gitml.ci.summary import render_summary

    several = _declared(params_file) if model is None else []
    if several:  # every model's, each under its name
        return "\n\n".join(f"== model {name}\n" + render_summary(project_paths(params_file, name), model=name)
                           for name in several)
    return render_summary(project_paths(params_file, model), model=model if _declared(params_file) else None)


def _declared(params_file: str | Path | None) -> list[str]:
    """The models ``params_file`` (default ./params.yaml) declares; empty for one model."""
    from gitml.config.models import declared_in

    return declared_in(Path(params_file if params_file is not None else "params.yaml"))


def serve(*, bundle: str | Path | list[str] | None = None, deployment: str | Path | list[str] | None = None,
          stage: str | None = None, models: list[str] | None = None,
          follow: bool = False, repo: str | Path = ".", params_file: str | Path | None = None,
          host: str | None = None, port: int | None = None, workers: int | None = None,
          log_dir: str | Path | None = None) -> None:
    """Run the model server until stopped: serve.* and registry.* from params, the arguments on top.

    ``bundle``/``deployment``: one location, or several ``NAME=LOCATION`` served together
    (with ``stage``, ``models`` names the registry models whose stage to serve).
    """
    import dataclasses

    from gitml.config.params import load_sections
    from gitml.errors import UsageError
    from gitml.serve.server import run
    from gitml.serve.slots import named_sources
    from gitml.serve.state import ServeSettings

    params = load_sections(params_file, ("serve", "registry"))  # all the server reads
    cfg, registry = params.serve, params.registry
    refused = registry.unknown_stage(stage) if stage is not None else None
    if refused:
        raise UsageError(f"Invalid value for '--stage': {refused}")
    overrides: dict[str, Any] = {"host": host, "port": port, "workers": workers,
                                 "log_dir": str(log_dir) if log_dir else None}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    single, named = named_sources(_values(bundle), _values(deployment), stage, list(models or []))
    repo = Path(repo)
    run(ServeSettings(
        bundle=single.get("bundle"), deployment=single.get("deployment"), stage=single.get("stage"),
        models=named, follow=follow, repo=str(repo), registry_name=registry.model,
        registry_remote=registry.remote if stage else None, cfg=cfg,
        registry_allowed_signers=str(repo / registry.allowed_signers) if stage in registry.signed_stages else None,
    ))


def _values(given: str | Path | list[str] | None) -> list[str]:
    return [] if given is None else [str(given)] if isinstance(given, (str, Path)) else [str(v) for v in given]


def simulate(url: str, batches: int, batch_rows: int, source: str = "synthetic", shift: float = 0.0, seed: int = 0,
             data_dir: str | Path | None = None, params_file: str | Path | None = None, feedback: bool = True):
    """Send batches of rows (and their labels) to a running server; the result counts failures."""
    from gitml.serve.simulate import simulate as run

    return run(url, batches, batch_rows, source, shift, seed, data_dir, params_file, feedback)


def drift_check(bundle: str | Path | None, log_dir: str | Path | None, out: str | Path | None,
                cache: str | Path | None = None,
                params_file: str | Path | None = None, *, detector: str | None = None, window_rows: int | None = None,
                window_hours: float | None = None, p_val: float | None = None, plots: bool = False,
                model: str | None = None):
    """Test the recent request log for drift; the report's exit_code is 0, 1 or 2.

    Any failure to reach a verdict (settings, bundle, log) is a DriftCheckError (exit 2),
    and no earlier verdict is left in ``out`` for retrain-pr to act on. A None ``bundle``,
    ``log_dir`` or ``out`` is ``paths.bundle``, ``serve.log_dir`` (``serve.log_dir/NAME`` for
    ``model`` in a repository of several models) or ``paths.drift``.
    """
    from gitml.monitor.run import check_with_params

    return check_with_params(bundle, log_dir, out, cache, params_file, model=model, plots=plots, detector=detector,
                             window_rows=window_rows, window_hours=window_hours, p_val=p_val)


def retrain_pr(params_file: str | Path, report_dir: str | Path | None, log_dir: str | Path | None,
               bundle: str | Path | None, repo_slug: str | None, forge_url: str | None = None, base: str = "main",
               label: str = "retrain", remote: str = "origin", model: str | None = None):
    """On drift, add the labelled production rows as a DVC batch and open or update the retraining PR.

    A None ``report_dir``, ``log_dir`` or ``bundle`` is ``paths.drift``, ``serve.log_dir``
    (``serve.log_dir/NAME`` for ``model`` in a repository of several models) or ``paths.bundle``
    of ``params_file``; ``model``'s branch is ``gitml/retrain/NAME``.
    """
    from gitml.gitops.retrain import retrain_from_files

    return retrain_from_files(params_file=Path(params_file), report_dir=report_dir, log_dir=log_dir,
                              bundle_dir=bundle, repo_slug=repo_slug, forge_url=forge_url, base=base,
                              label=label, remote=remote, model=model)


def drift_run(params_file: str | Path = "params.yaml", *, models: Sequence[str] = (),
              bundles: Sequence[str] = (), repo: str | Path = ".", **settings: Any):
    """Check every model's window (or ``models``') and open or update a retraining PR per drifting model.

    ``bundles``: ``NAME=FOLDER`` bundles to check instead of fetching each model's stage
    version (only those models). ``settings``: :class:`gitml.monitor.run.RunSettings` fields.
    Returns one :class:`~gitml.monitor.run.ModelOutcome` per model; one model's failure does
    not stop the others.
    """
    from gitml.gitops.git import repo_root
    from gitml.monitor.run import RunSettings, named_bundles
    from gitml.monitor.run import drift_run as run

    root = repo_root(repo)
    return run(root, root / params_file, RunSettings(**settings), names=models, bundles=named_bundles(bundles))


def exp_best(metric: str, minimize: bool | None = None, branch: str | None = None, pull_request: bool = False,
             repo_slug: str | None = None, forge_url: str | None = None, base: str = "main", remote: str = "origin",
             params_file: str | Path | None = None, repo: str | Path = "."):
    """The best experiment of the current commit that passed its gate, as branch ``exp/<name>``
    (gitml.gitops.experiments); with ``pull_request`` also pushed and opened as a pull request."""
    import dataclasses

    from gitml.gitops.experiments import best_experiment, ranking_markdown
    from gitml.gitops.git import git, repo_root

    root = repo_root(repo)
    paths = _params_or_defaults(params_file if params_file is not None or not (root / "params.yaml").is_file()
                                else root / "params.yaml").paths
    result = best_experiment(root, metric, minimize, paths.metrics, paths.gate, branch)
    if not pull_request:
        return result
    from gitml.errors import GitmlError
    from gitml.gitops.forge import GitHubForge

    if not repo_slug:
        raise GitmlError("No repository: pass --repo-slug owner/name or set GITHUB_REPOSITORY.")
    git(root, "push", "-q", remote, f"refs/heads/{result.branch}:refs/heads/{result.branch}")
    with GitHubForge(repo_slug, base_url=forge_url) as forge:
        title = f"Experiment {result.best.name}: best {result.metric} of the sweep, gate passed"
        pull = forge.open_pull(str(result.branch), base, title, ranking_markdown(result), ["experiment"])
    return dataclasses.replace(result, pull_url=pull.url)


def exp_search(metric: str, params: Sequence[str], trials: int, workers: int = 2, minimize: bool | None = None,
               seed: int = 0, sampler: str = "tpe", params_file: str | Path | None = None, repo: str | Path = "."):
    """Run a model-based sweep of ``trials`` points through DVC's experiment queue (gitml.gitops.search)."""
    from gitml.errors import GitmlError
    from gitml.gitops.experiments import direction
    from gitml.gitops.git import repo_root
    from gitml.gitops.search import Param, search

    if trials < 1 or workers < 1:
        raise GitmlError(f"--trials and --workers must be at least 1, got {trials} and {workers}.")
    if sampler not in ("tpe", "random"):
        raise GitmlError(f"--sampler {sampler!r}: allowed tpe, random.")
    space = [Param.parse(text) for text in params]
    if not space:
        raise GitmlError("Name at least one --param KEY=float:LOW:HIGH (or int:LOW:HIGH, choice:A,B).")
    root = repo_root(repo)
    paths = _params_or_defaults(params_file if params_file is not None or not (root / "params.yaml").is_file()
                                else root / "params.yaml").paths
    from gitml.config.compose import recorded_overrides

    composed = root / "params.yaml"
    base = recorded_overrides(composed.read_text(encoding="utf-8")) if composed.is_file() else []
    return search(root, metric, direction(metric, minimize), space, trials, workers, paths.metrics, paths.gate,
                  seed, sampler, base=base)


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


def add_models(specs: Sequence[str], directory: str | Path = ".") -> list[str]:
    """Declare models ``NAME[:DATA[:MODEL]]`` in the project at ``directory`` (see gitml.scaffold.several)."""
    from gitml.scaffold.several import add_models as add

    return add(directory, list(specs))


def list_models(params_file: str | Path = "params.yaml", names_only: bool = False) -> list[str]:
    """The models ``params_file`` declares (a one-model file: its ``registry.model``), one line each."""
    from gitml.config.models import declared_in

    several = declared_in(Path(params_file))
    if names_only and several:
        return several
    chosen = [load_params(params_file, name) for name in several] or [load_params(params_file)]
    if names_only:
        return [cfg.registry.model for cfg in chosen]
    return [f"{cfg.registry.model:<20} data={cfg.data.name:<16} family={cfg.model.family:<10} bundle={cfg.paths.bundle}"
            for cfg in chosen]


def changed_models(base: str, head: str | None = None, merge_base: bool = False, repo: str | Path = "."):
    """The models a change touched, between ``base`` and ``head`` (None: the working tree); see gitml.ci.changed.

    Example:
        >>> changed_models("origin/main", merge_base=True).names  # doctest: +SKIP
        ['churn']
    """
    from gitml.ci.changed import changed_models as run
    from gitml.gitops.git import repo_root

    return run(repo_root(repo), base, head, merge_base)


def init(directory: str | Path = ".", data: str | Path | None = None, label: str | None = None,
         task: str | None = None, model: str | None = None, take: Sequence[str] = (),
         models: Sequence[str] = ()):
    """Write a gitml project in ``directory`` (git, DVC, first commit), or update one keeping the user's edits.

    ``models``: make it a project of several models, ``NAME[:DATA[:MODEL]]`` each (see
    :func:`add_models`), committed as a second commit of a new repository.

    Example:
        >>> init("churn-model", data="churn.csv", label="churned", model="hgb").lines()
    """
    from gitml.scaffold.project import init_project

    result = init_project(directory, data, label, task, model, tuple(take))
    if models:
        from gitml.gitops.git import git
        from gitml.scaffold.several import add_models as add

        result.notes += add(result.project, list(models), keep_first=False)[:-1]
        if result.new_repository:
            git(result.project, "add", "-A")
            git(result.project, "commit", "-q", "-m", f"gitml models add {' '.join(models)}")
            result.notes.append("git: the models are committed too (git log -2)")
    return result


def canary_check(params_file: str | Path | None = "params.yaml", **options: Any):
    """Judge a model's canary against its stable version; report, and on promote or rollback open or update
    its pull request (see gitml.delivery.run.canary_check for ``options``).

    Example:
        >>> canary_check("params.yaml", model="churn", log_dir="logs", repo_slug="acme/ml").verdict  # doctest: +SKIP
        'rollback'
    """
    from gitml.delivery.run import canary_check as run

    return run(params_file, **options)
