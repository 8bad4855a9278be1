"""Webhook alerts: drift, canary verdicts, gate failures and promotions (docs/alerts.md).

:func:`notify` posts one :class:`Alert` to every ``alerts.webhooks`` entry that lists its
event, as generic JSON or as a Slack incoming-webhook message, with the bearer token read
from the environment (``token_env``) at send time. It never raises and never changes what
the calling command does or exits with: a receiver that answers 5xx or 429, times out or
refuses the connection gets ``retries`` more attempts, then the failure is one warning that
names the webhook's host and its config key, never its path, query or token.

Events and their ``details`` (the JSON body's ``details``; Slack shows them as lines):

- ``drift`` (gitml drift check / drift run, on a drift verdict): ``verdict``, ``reasons``
  (one sentence per detector that found drift), ``rows`` (the window), ``drifted_features``,
  ``report`` (the report folder).
- ``canary`` (gitml canary check): ``verdict`` (``promote``, ``rollback`` or ``wait``),
  ``stable_version``, ``canary_version``, ``reasons``, and ``pull_request`` (its URL) or
  ``applied`` (true when a hard limit rolled it back directly), as the caller has them.
- ``gate_failed`` (gitml gate verify --alert): ``reason`` (the verify message, every failed rule).
- ``promotion`` (gitml promote): ``stage``, ``tags``, ``commit``, ``pushed``.

Example:
    >>> notify(cfg.alerts, Alert("canary", "churn", "canary v1.2.0 rolled back: error rate 4.1% > 1%",
    ...                          version="v1.2.0", details={"verdict": "rollback", "stable_version": "v1.1.0"}))
    [Delivery(host='hooks.slack.com', ok=True, attempts=1, status=200, problem='')]
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gitml.config.rules_alerts import url_problem
from gitml.config.schema import ALERT_EVENTS, AlertsConfig, Config, WebhookConfig

if TYPE_CHECKING:
    from gitml.monitor.check import DriftReport
    from gitml.registry.promote import Promotion

log = logging.getLogger(__name__)

# Seconds before the 2nd, 3rd, ... attempt: a receiver restarting gets a few seconds, a command
# waits at most 1 + 2 + 4 + 8 + 16 s beyond its timeouts (alerts.webhooks.<i>.retries <= 5).
BACKOFF_SECONDS = 1.0
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Alert:
    """One event to tell the webhooks about; ``details`` per event as the module docstring lists."""

    event: str  # one of ALERT_EVENTS
    model: str  # the registry name (a model of a repository of several models)
    summary: str  # one line a person reads first
    version: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event not in ALERT_EVENTS:
            raise ValueError(f"Unknown alert event {self.event!r}. Allowed: {', '.join(ALERT_EVENTS)}.")

    def to_json(self, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The generic JSON body: event, model, version, summary, details, repository, run_url, time."""
        env = os.environ if env is None else env
        return {"event": self.event, "model": self.model, "version": self.version, "summary": self.summary,
                "details": dict(self.details), "repository": env.get("GITHUB_REPOSITORY", ""),
                "run_url": run_url(env), "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


@dataclass(frozen=True)
class Delivery:
    """What one webhook made of an alert."""

    host: str
    ok: bool
    attempts: int
    status: int | None
    problem: str = ""


def run_url(env: Mapping[str, str]) -> str:
    """The GitHub Actions run that raised the alert ("" outside Actions)."""
    parts = [env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else ""


def notify(cfg: AlertsConfig, alert: Alert, env: Mapping[str, str] | None = None) -> list[Delivery]:
    """Post ``alert`` to each webhook that lists its event; one :class:`Delivery` each. Never raises."""
    env = os.environ if env is None else env
    deliveries = []
    for index, hook in enumerate(cfg.webhooks):
        if alert.event not in hook.events:
            continue
        try:
            delivery = _deliver(hook, alert, env)
        except Exception as exc:  # an alert must never fail the command that raised it
            delivery = Delivery("?", False, 0, None, f"{type(exc).__name__} (a bug: please report it)")
        if delivery.ok:
            log.info("alert %s sent to %s <alerts.webhooks.%d>", alert.event, delivery.host, index)
        else:
            log.warning("alert %s not delivered to %s: %s, after %d attempt(s) <alerts.webhooks.%d>",
                        alert.event, delivery.host, delivery.problem, delivery.attempts, index)
        deliveries.append(delivery)
    return deliveries


def _deliver(hook: WebhookConfig, alert: Alert, env: Mapping[str, str]) -> Delivery:
    url = hook.url or env.get(hook.url_env, "")
    if not url:
        return Delivery("?", False, 0, None, f"the environment variable {hook.url_env} (url_env) is not set")
    host = urlsplit(url).hostname or "?"
    problem = url_problem(url, committed=not hook.url_env)
    if problem:
        return Delivery(host, False, 0, None, f"the URL {problem}")
    token = env.get(hook.token_env, "") if hook.token_env else ""
    body = alert.to_json(env)
    if hook.format == "slack":
        body = slack_message(body)
    return _post(url, host, body, token, hook)


def _post(url: str, host: str, body: dict[str, Any], token: str, hook: WebhookConfig) -> Delivery:
    import httpx

    headers = {"Content-Type": "application/json", "User-Agent": "gitml-alerts"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    content = json.dumps(body).encode("utf-8")
    attempts, status, problem = 1 + hook.retries, None, ""
    with _quiet_http_logs(), httpx.Client(timeout=hook.timeout_seconds, follow_redirects=False) as client:
        for attempt in range(1, attempts + 1):
            try:
                response = client.post(url, content=content, headers=headers)
            except httpx.HTTPError as exc:  # timeouts, refused connections, protocol errors
                status, problem, again = None, _masked(f"{type(exc).__name__}: {exc}", (token, url)), True
            else:
                status = response.status_code
                if status < 300:
                    return Delivery(host, True, attempt, status)
                problem, again = f"HTTP {status}", status in RETRY_STATUS
            if not again or attempt == attempts:
                return Delivery(host, False, attempt, status, problem)
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
    return Delivery(host, False, attempts, status, problem)  # pragma: no cover (the loop returns)


def _masked(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` without any of ``secrets`` (an exception's text can quote the URL it was given)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


@contextmanager
def _quiet_http_logs() -> Iterator[None]:
    """httpx logs each request's whole URL at INFO (a Slack URL is its secret): not while alerting."""
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


# ------------------------------------------------------------------------------ Slack

# Slack's documented limits (api.slack.com/reference/block-kit/blocks): a header's plain text
# 150 characters, a section's text 3,000, a field's 2,000, 10 fields, 10 context elements.
HEADER_CHARS, SECTION_CHARS, FIELD_CHARS = 150, 3000, 2000
EMOJI = {"drift": ":chart_with_upwards_trend:", "canary": ":hatching_chick:", "gate_failed": ":no_entry:",
         "promotion": ":rocket:"}


def slack_message(body: Mapping[str, Any]) -> dict[str, Any]:
    """A generic body (:meth:`Alert.to_json`) as a Slack incoming-webhook message: ``text`` (the
    notification's fallback) and Block Kit ``blocks``: header, summary, details, model/version, context."""
    lines = [f"*{_escape(body['summary'])}*", *(_escape(line) for line in _detail_lines(body["details"]))]
    fields = [{"type": "mrkdwn", "text": _clip(f"*{name}*\n{_escape(str(value))}", FIELD_CHARS)}
              for name, value in (("Model", body["model"]), ("Version", body["version"] or "-"),
                                  ("Event", body["event"]))]
    context = [_escape(body["repository"]) or "gitml", body["time"]]
    if body["run_url"]:
        context.append(f"<{body['run_url']}|workflow run>")
    return {
        "text": f"gitml {body['event']}: {body['summary']}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                        "text": _clip(f"{EMOJI[body['event']]} gitml {body['event']}: {body['model']}",
                                                      HEADER_CHARS)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(lines), SECTION_CHARS)}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(" | ".join(context), FIELD_CHARS)}]},
        ],
    }


def _detail_lines(details: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, value in details.items():
        if isinstance(value, list | tuple):
            lines += [f"{key}:", *(f"\u2022 {item}" for item in value)] if value else []
        elif value not in (None, ""):
            lines.append(f"{key}: {value}")
    return lines


def _escape(text: str) -> str:
    """Slack's mrkdwn control characters (&, <, >) as its documented entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


# ---------------------------------------------------------------- the events gitml raises


def alert_drift(cfg: Config, report: DriftReport) -> list[Delivery]:
    """A drift verdict of ``report`` (nothing for no drift or no verdict) to ``cfg.alerts``."""
    if not report.is_drift or not cfg.alerts.webhooks:
        return []
    features = report.features.drifted_features if report.features is not None else []
    rows = report.window.get("rows")
    details = {"verdict": report.verdict, "reasons": report.reasons, "rows": rows,
               "drifted_features": list(features), "report": list(report.files)}
    summary = f"drift in {cfg.registry.model} {report.bundle.get('version', '')}: " + (
        f"{len(features)} feature(s) drifted" if features else "; ".join(report.reasons)) + f" ({rows} rows)"
    return notify(cfg.alerts, Alert("drift", cfg.registry.model, summary, report.bundle.get("version"), details))


def alert_gate_failed(cfg: Config, reason: str) -> list[Delivery]:
    """``gitml gate verify --alert`` found a failed or stale verdict."""
    first = reason.splitlines()[0] if reason else "gate failed"
    return notify(cfg.alerts, Alert("gate_failed", cfg.registry.model, f"gate failed for {cfg.registry.model}: "
                                    f"{first}", details={"reason": reason}))


def alert_promotion(cfg: Config, promotion: Promotion) -> list[Delivery]:
    """A promotion that created tags (assigning a stage it already holds tells no one)."""
    if not promotion.tags:
        return []
    details = {"stage": promotion.stage, "tags": list(promotion.tags), "commit": promotion.commit,
               "pushed": promotion.pushed}
    return notify(cfg.alerts, Alert("promotion", promotion.name, promotion.describe(), promotion.version, details))
