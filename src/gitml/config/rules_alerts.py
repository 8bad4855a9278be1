"""``alerts.*``: webhook receivers named exactly, secrets kept out of the committed config (see :mod:`gitml.config.rules`)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from gitml.config.checks import Problems
from gitml.config.schema import ALERT_EVENTS, AlertsConfig

FORMATS = ("json", "slack")
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
MAX_RETRIES = 5
MAX_TIMEOUT_SECONDS = 60.0


def url_problem(url: str, committed: bool = True) -> str | None:
    """Why ``url`` cannot receive alerts, or None: https anywhere, http only to a loopback host,
    and, for a ``committed`` one (``url``, not ``url_env``'s value), no credentials, query string
    or fragment: a secret there would be in git.

    The problem shows the scheme and host only: whatever else a bad URL holds may be a secret.

    Example:
        >>> url_problem("http://hooks.example.com/x")
        "must be https (http only to 127.0.0.1, ::1 or localhost), got 'http://hooks.example.com/...'."
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return "is not a URL."
    shown = f"{parts.scheme}://{host}/..." if host else "a URL without a host"
    if parts.scheme not in ("https", "http") or not host:
        return f"must be an https:// URL with a host, got {shown!r}."
    if parts.scheme == "http" and host not in LOOPBACK:
        return f"must be https (http only to {', '.join(LOOPBACK)}), got {shown!r}."
    if not committed:
        return None
    if parts.username is not None or parts.password is not None:
        return (f"must not carry credentials (give the token's env var in token_env, or the whole URL's in "
                f"url_env), got {shown!r}.")
    if parts.query or parts.fragment:
        return (f"must not carry a query string or fragment (a secret there would be committed: give the "
                f"URL's env var in url_env), got {shown!r}.")
    return None


def alerts_problems(alerts: AlertsConfig) -> Problems:
    """Every problem of every ``alerts.webhooks.<i>``: one URL source, a known format and events,
    env var names, bounded timeouts and retries."""
    problems: Problems = []
    for i, hook in enumerate(alerts.webhooks):
        key = f"alerts.webhooks.{i}"
        if bool(hook.url) == bool(hook.url_env):
            problems.append((f"{key}.url", "give exactly one of url (committed) and url_env (the env var "
                             "holding it), got " + ("both." if hook.url else "neither.")))
        elif hook.url and (problem := url_problem(hook.url)):
            problems.append((f"{key}.url", problem))
        for name in ("url_env", "token_env"):
            value = getattr(hook, name)
            if value and not re.fullmatch(ENV_NAME, value):
                problems.append((f"{key}.{name}", f"must be an environment variable name (letters, digits, _)"
                                 f"{' or empty' if name == 'token_env' else ''}, got {value!r}."))
        if hook.format not in FORMATS:
            problems.append((f"{key}.format", f"unknown format {hook.format!r}. Allowed: {', '.join(FORMATS)}."))
        unknown = [e for e in hook.events if e not in ALERT_EVENTS]
        if not hook.events or unknown:
            problems.append((f"{key}.events", f"must list events among {', '.join(ALERT_EVENTS)}, got "
                             f"{list(hook.events)}."))
        elif len(set(hook.events)) != len(hook.events):
            problems.append((f"{key}.events", f"lists an event twice: {list(hook.events)}."))
        if not 0 < hook.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            problems.append((f"{key}.timeout_seconds", f"must be above 0 and at most {MAX_TIMEOUT_SECONDS:g} "
                             f"seconds, got {hook.timeout_seconds}."))
        if not 0 <= hook.retries <= MAX_RETRIES:
            problems.append((f"{key}.retries", f"must be between 0 and {MAX_RETRIES}, got {hook.retries}."))
    return problems
