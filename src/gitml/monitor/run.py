"""The scheduled drift job: every deployed model's window checked, one retraining pull request per drifting model.

``gitml drift check`` and ``gitml retrain-pr`` handle one model; :func:`drift_run` does both
for every model of the repository (or those named): the model's stage version (``prod``)
is fetched from the registry, or a bundle is given per model; its log window is
``LOG_DIR/NAME`` in a repository of several models, as the server writes it; its report
goes to its own ``paths.drift``; a drifting model gets its own branch and pull request
(gitml/gitops/retrain.py). A model with no version in the stage is skipped. A model that
fails (no logs yet, a bundle that cannot be fetched, a push refused) is reported and the
others still run.

Example:
    >>> outcomes = drift_run(Path("."), Path("params.yaml"), repo_slug="acme/app")
    >>> [o.line() for o in outcomes]
    ['churn: no drift (600 rows)', 'price: drift; opened pull request #4 from gitml/retrain/price ...']
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gitml.errors import DriftCheckError, GitmlError, UsageError

if TYPE_CHECKING:
    from gitml.gitops.retrain import RetrainResult
    from gitml.monitor.check import DriftReport

log = logging.getLogger(__name__)

Status = Literal["no drift", "drift", "skipped", "failed"]


def check_with_params(
    bundle: str | Path | None, log_dir: str | Path | None, out: str | Path | None, cache: str | Path | None,
    params_file: str | Path | None = None, *, model: str | None = None, plots: bool = False,
    **overrides: Any,
) -> DriftReport:
    """:func:`gitml.monitor.check.drift_check` with ``model``'s settings (``drift.*``, ``gate``)
    and defaults: a None ``bundle``, ``log_dir`` or ``out`` is ``paths.bundle``, the model's log
    folder (:func:`~gitml.monitor.settings.model_log_dir`) or ``paths.drift``.

    Any failure to reach a verdict is a DriftCheckError (exit 2), and no earlier verdict is
    left in ``out`` for retrain-pr to act on. ``overrides``: detector, window_rows,
    window_hours, p_val (None: the params' value).
    """
    from gitml.alerts import alert_drift
    from gitml.config.params import load_params_or_defaults
    from gitml.config.paths import PathsConfig
    from gitml.monitor.check import drift_check
    from gitml.monitor.report import clear_report
    from gitml.monitor.settings import load_drift_config, model_log_dir

    try:
        params = load_params_or_defaults(params_file, model)
        out = out if out is not None else params.paths.drift
        bundle = bundle if bundle is not None else params.paths.bundle
        log_dir = log_dir if log_dir is not None else model_log_dir(params_file, model)
        cfg = load_drift_config(params_file, model=model, **overrides)
        report = drift_check(bundle, log_dir, cfg, out, cache, plots=plots, gate=params.gate)
        alert_drift(params, report)  # alerts.webhooks listing 'drift'; never raises
        return report
    except DriftCheckError:
        raise
    except GitmlError as exc:
        # Unreadable params: the default report folder is the one a verdict could be left in.
        clear_report(Path(out if out is not None else PathsConfig.drift))
        raise DriftCheckError(str(exc)) from exc


@dataclass(frozen=True)
class ModelOutcome:
    """What the run did for one model: its status, one line of detail, and its pull request if any."""

    model: str
    status: Status
    detail: str
    retrain: RetrainResult | None = field(default=None, compare=False)

    def line(self) -> str:
        return f"{self.model}: {self.status}; {self.detail}"


@dataclass(frozen=True)
class RunSettings:
    """The parts of a run every model shares (the command line's options)."""

    stage: str = "prod"
    bundles_dir: Path = Path(".gitml/drift/bundles")  # where fetched bundles go, one folder per model
    log_dir: str | None = None  # the servers' serve.log_dir root (None: the params' serve.log_dir)
    cache: Path = Path(".gitml/drift-cache")
    plots: bool = False
    repo_slug: str | None = None
    forge_url: str | None = None
    base: str = "main"
    label: str = "retrain"
    remote: str = "origin"


def run_models(params_file: Path, names: Sequence[str] = ()) -> list[tuple[str, str | None]]:
    """``(name, model)`` for each model to check: every declared model (``model`` the name), or
    a one-model repository's ``registry.model`` (``model`` None); ``names`` picks some."""
    from gitml.config.models import declared_in
    from gitml.config.params import load_params

    several = declared_in(params_file)
    known = several or [load_params(params_file).registry.model]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"Unknown model(s) {', '.join(repr(n) for n in unknown)} in {params_file}. "
                         f"Allowed: {', '.join(known)}.")
    return [(name, name if several else None) for name in (list(dict.fromkeys(names)) or known)]


def named_bundles(values: Sequence[str]) -> dict[str, str] | None:
    """``NAME=FOLDER`` values (``--bundle``) as a dict; None when there are none."""
    from gitml.config.rules import GTO_NAME

    given: dict[str, str] = {}
    for value in values:
        name, equals, where = value.partition("=")
        if not (equals and where and re.fullmatch(GTO_NAME, name)):
            raise UsageError(f"--bundle {value!r}: give NAME=FOLDER, the model's name and its bundle folder.")
        if name in given:
            raise UsageError(f"--bundle names model '{name}' twice.")
        given[name] = where
    return given or None


def drift_run(
    repo: Path, params_file: Path, settings: RunSettings, *, names: Sequence[str] = (),
    bundles: dict[str, str] | None = None,
) -> list[ModelOutcome]:
    """Check every model (or ``names``), and open or update a retraining pull request for each drifting one.

    ``bundles`` (name -> folder) gives the bundles to check, only those models; without it
    each model's ``settings.stage`` version is fetched from the registry into
    ``settings.bundles_dir/NAME`` (a model without one is skipped). One model's failure is
    its outcome; the others still run.
    """
    chosen = run_models(params_file, list(bundles) if bundles else names)
    remotes = {} if bundles else _sync_registries(repo, params_file, [model for _, model in chosen])
    outcomes = []
    for name, model in chosen:
        try:
            outcome = _run_one(repo, params_file, settings, name, model, (bundles or {}).get(name), remotes)
        except Exception as exc:  # one model's failure, a bug included, must not stop the others
            if not isinstance(exc, GitmlError):
                log.debug("drift run: %s failed", name, exc_info=True)
            outcome = ModelOutcome(name, "failed", _one_line(exc))
        log.debug("drift run: %s", outcome.line())
        outcomes.append(outcome)
    return outcomes


def _run_one(repo: Path, params_file: Path, settings: RunSettings, name: str, model: str | None,
             bundle: str | None, remotes: dict[str | None, str | GitmlError | None]) -> ModelOutcome:
    from gitml.gitops.retrain import retrain_from_files
    from gitml.monitor.check import EXIT_ERROR
    from gitml.monitor.settings import model_log_dir
    from gitml.utils.storage import join, location

    where = ""
    if bundle is None:
        remote = remotes.get(model)
        if isinstance(remote, GitmlError):
            raise remote
        version = _fetch_stage(repo, params_file, model, settings.stage, settings.bundles_dir / name, remote)
        if version is None:
            return ModelOutcome(name, "skipped", f"no version in stage '{settings.stage}'")
        bundle, where = str(settings.bundles_dir / name), f"{settings.stage} {version}, "
    log_dir = (model_log_dir(params_file, model) if settings.log_dir is None
               else str(join(location(settings.log_dir, "--log-dir"), name)) if model else settings.log_dir)
    report = check_with_params(bundle, log_dir, None, settings.cache, params_file, model=model, plots=settings.plots)
    rows = f"{where}{report.window['rows']} rows of {log_dir}"
    if report.exit_code == EXIT_ERROR:  # a schema change or invalid values: a report, but no verdict
        return ModelOutcome(name, "failed", f"{report.verdict.replace('_', ' ')} ({rows}): "
                            + "; ".join(report.reasons))
    if not report.is_drift:
        return ModelOutcome(name, "no drift", rows)
    result = retrain_from_files(params_file=params_file, report_dir=None, log_dir=log_dir, bundle_dir=bundle,
                                repo_slug=settings.repo_slug, forge_url=settings.forge_url, base=settings.base,
                                label=settings.label, remote=settings.remote, repo=repo, model=model)
    return ModelOutcome(name, "drift", f"{'; '.join(report.reasons)} ({rows}); {result.describe()}", result)


def _sync_registries(repo: Path, params_file: Path,
                     models: list[str | None]) -> dict[str | None, str | GitmlError | None]:
    """Take each registry remote's stage-tag deletions once for all the models it holds (one fetch and
    one listing, not one per model), as ``gitml fetch`` does for one; model -> its synced remote or None.
    A remote that cannot be read fails the models using it, each with the reason."""
    from gitml.config.params import load_params
    from gitml.gitops.git import has_remote
    from gitml.registry.tags import sync_stage_tags_of

    registries = {model: load_params(params_file, model).registry for model in models}
    by_remote: dict[str, list[str]] = {}
    for registry in registries.values():  # models share a remote: one `git remote` check per remote, not model
        by_remote.setdefault(registry.remote, []).append(registry.model)
    synced: dict[str, str | GitmlError] = {}
    for remote, names in by_remote.items():
        if not has_remote(repo, remote):
            log.warning("no git remote '%s' <registry.remote>: the registry is read from local tags, and whether "
                        "the commit is on the remote's default branch is not checked", remote)
            continue
        try:
            sync_stage_tags_of(repo, remote, names)
            synced[remote] = remote
        except GitmlError as exc:
            synced[remote] = GitmlError(f"cannot read the registry on '{remote}' <registry.remote>: {exc}")
    return {model: synced.get(registry.remote) for model, registry in registries.items()}


def _fetch_stage(repo: Path, params_file: Path, model: str | None, stage: str, out: Path,
                 remote: str | None) -> str | None:
    """The version of ``stage`` fetched and verified into ``out`` (as ``gitml fetch``; ``remote``
    already synced), or None when the stage has no version."""
    from gitml.config.params import load_params
    from gitml.registry.fetch import fetch_bundle, signers_for
    from gitml.registry.tags import stage_version

    registry = load_params(params_file, model).registry
    if stage_version(repo, registry.model, stage) is None:
        return None
    found, _ = fetch_bundle(repo, registry.model, out, stage, remote=remote,
                            allowed_signers=signers_for(repo, registry, stage))
    return found.version


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, GitmlError) else f"{type(exc).__name__}: {text}"
