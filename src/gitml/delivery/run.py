"""What ``gitml canary check`` does, from the files CI has: settings, split, logs -> verdict, report,
pull request, the direct rollback past a hard limit, the alert (docs/delivery.md, "Canary check")."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from gitml.delivery.check import (
    CanaryReport,
    check_config,
    errors_from_metrics,
    judge,
    latency_from_metrics,
    scrape_metrics,
    write_report,
)
from gitml.errors import GitmlError

if TYPE_CHECKING:
    from gitml.config.schema import CanaryConfig, Config

log = logging.getLogger(__name__)


def canary_check(
    params_file: str | Path | None = "params.yaml", *, model: str | None = None, log_dir: str | None = None,
    target: str | None = None, out: Path | None = None, metrics_url: str | None = None, pr: bool = True,
    repo_slug: str | None = None, forge_url: str | None = None, base: str = "main", remote: str = "origin",
    label: str = "canary", repo: Path = Path("."), settings: CanaryConfig | None = None,
) -> CanaryReport:
    """Judge ``model``'s canary, write canary.json/canary.md, and on promote or rollback open or update its
    pull request (``pr``; needs ``repo_slug``). ``settings`` replaces ``canary.*`` of ``params_file``
    (None: ./params.yaml when present, else the defaults). Past a hard limit with ``canary.apply_rollback``, also
    write the rollback into ``target`` (as ``gitml deploy --traffic`` does)."""
    from gitml.config.params import load_params_or_defaults
    from gitml.monitor.settings import model_log_dir
    from gitml.serve.delivery import traffic_file

    cfg = load_params_or_defaults(params_file, model)
    if settings is not None:
        cfg.canary = settings
    check_config(cfg.canary, "the canary settings" if settings else str(params_file or "params.yaml"))
    name = cfg.registry.model
    file = traffic_file(repo, name)
    log_dir = log_dir if log_dir is not None else model_log_dir(params_file, model)
    scraped = scrape_metrics(metrics_url) if metrics_url else None
    latency = latency_from_metrics(scraped, name) if scraped is not None else None
    errors = errors_from_metrics(scraped, name) if scraped is not None else None
    report = judge(name, file, log_dir, cfg.canary, latency, errors)
    report.latency_source = metrics_url or ""
    if report.verdict == "rollback" and report.hard and cfg.canary.apply_rollback:
        if target is None:
            raise GitmlError("canary.apply_rollback is on and a hard limit was crossed, but no --target names "
                             "where to apply the rollback.")
        apply_rollback(report, target)
    out = out if out is not None else Path(cfg.paths.reports) / "canary"
    if report.proposed and pr:
        if not repo_slug:
            raise GitmlError("No repository for the pull request: pass --repo-slug owner/name or set "
                             "GITHUB_REPOSITORY (or --no-pr to only report).")
        from gitml.delivery.pr import canary_pr
        from gitml.gitops.forge import GitHubForge

        write_report(report, out)  # the body reads like the report; the report then names the pull request
        with GitHubForge(repo_slug, base_url=forge_url) as forge:
            pull = canary_pr(repo, forge, report, base=base, remote=remote, label=label)
        report.pull_request, report.pull_action = pull.pull.url or f"#{pull.pull.number}", pull.action
    write_report(report, out)
    alert(cfg, report)
    return report


def apply_rollback(report: CanaryReport, target: str) -> None:
    """Send every request to the stable version in ``target`` now (traffic.json, then current.json)."""
    from gitml.serve.deployment import publish_split
    from gitml.serve.traffic import Split, read_traffic_file

    old = read_traffic_file(report.file)
    publish_split(target, Split(((report.stable, 100),), old.shadow, old.key))
    report.applied = True
    log.warning("hard limit crossed: %s rolled back to %s in %s <canary.apply_rollback>", report.model,
                report.stable, target)


def alert(cfg: Config, report: CanaryReport) -> None:
    """Tell the webhooks about the verdict (alerts.webhooks listing ``canary``)."""
    from gitml.alerts import Alert, notify

    if not cfg.alerts.webhooks:
        return
    canaries = [c.canary for c in report.comparisons]
    details: dict[str, object] = {"verdict": report.verdict, "stable_version": report.stable,
                                  "canary_version": ", ".join(canaries), "reasons": report.reasons}
    if report.pull_request:
        details["pull_request"] = report.pull_request
    if report.applied:
        details["applied"] = True
    summary = f"canary of {report.model} ({', '.join(canaries) or 'none'}): {report.verdict}" + (
        f" to {report.stable} (applied)" if report.applied else "")
    notify(cfg.alerts, Alert("canary", report.model, summary, canaries[0] if canaries else None, details))
