"""Keep secrets out of logs and messages: a registry of secrets and a redacting log filter.

A forge registers its token once; from then on :func:`redact` scrubs it from any text and
:class:`RedactingFilter` from log records of gitml, httpx/httpcore and the root handlers
present at registration (the CLI's stderr handler, pytest's capture).

Example:
    >>> register_secret("ghp_example")
    >>> redact("Authorization: Bearer ghp_example")
    'Authorization: Bearer ***'
"""

from __future__ import annotations

import logging

_SECRETS: set[str] = set()


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text


class RedactingFilter(logging.Filter):
    """Rewrites any log record whose text contains a registered secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            try:
                message = record.getMessage()
            except Exception:  # a malformed record is not ours to fix
                return True
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()
_GUARDED_LOGGERS = (
    "gitml", "gitml.gitops.forge", "gitml.gitops.retrain",  # a logger's filter sees only its own records
    "httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
)


def register_secret(secret: str) -> None:
    """Never log ``secret``: redact it in gitml's, httpx's and the root handlers' records."""
    if len(secret) >= 8:  # real tokens are long; redacting "test" everywhere would wreck messages
        _SECRETS.add(secret)
    for target in [*map(logging.getLogger, _GUARDED_LOGGERS), *logging.getLogger().handlers]:
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)
