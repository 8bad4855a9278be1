"""Turn Hydra and OmegaConf exceptions into one :class:`ConfigError` naming key and file."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from gitml.errors import ConfigError


def config_error_from(
    exc: BaseException, conf_dir: Path | None, overrides: Sequence[str], source: str | None = None
) -> ConfigError:
    """Build a ConfigError from whatever Hydra/OmegaConf raised during compose or load.

    ``source`` is the file being loaded (params.yaml); for a compose it is derived from the
    message: the group file (``In 'trainer/cpu'``) or the command-line override.
    """
    top = str(exc)
    where = source or _where(top, conf_dir)
    missing = re.search(r"Could not find '([^']+)/([^']+)'", top)
    if missing:
        group, option = missing.groups()
        available = re.findall(r"^\t(\S+)$", top, flags=re.MULTILINE)
        allowed = [a for a in available if not a.startswith("base_")]
        return ConfigError(
            str(conf_dir / group) if conf_dir else where, group,
            f"unknown option '{option}'. Allowed: {', '.join(allowed) or '(none)'}.",
        )
    for cause in _chain(exc):
        key = getattr(cause, "full_key", None)
        if key:
            message = str(getattr(cause, "msg", None) or cause).splitlines()[0]
            message = re.sub(r" not in '\w+'", " is not a known key", message)
            hint = None
            where = _override_for(str(key), overrides) or where
            if "is not a known key" in message:
                hint = "Check the spelling; the schema lives in gitml.config.schema."
            return ConfigError(where, str(key), message.rstrip(".") + ".", hint)
    if "Could not override" in top:
        key_match = re.search(r"Could not override '([^']+)'", top)
        return ConfigError(str(conf_dir) if conf_dir else where, key_match.group(1) if key_match else None, "unknown key.")
    first_line = top.splitlines()[0] if top else type(exc).__name__
    return ConfigError(where, None, first_line)


def _override_for(key: str, overrides: Sequence[str]) -> str | None:
    for override in overrides:
        if override.lstrip("+~").split("=", 1)[0] == key:
            return f"command-line override '{override}'"
    return None


def _where(message: str, conf_dir: Path | None) -> str:
    group_file = re.match(r"In '([^']+)'", message)
    if group_file and conf_dir is not None:
        return str(conf_dir / f"{group_file.group(1)}.yaml")
    override = re.search(r"Error merging override (\S+)", message)
    if override:
        return f"command-line override '{override.group(1)}'"
    return str(conf_dir) if conf_dir else "config"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def source_with_overrides(source: str, overrides: Sequence[str]) -> str:
    """``source``, and the overrides applied on top of it as a shell would take them back."""
    import shlex

    if not overrides:
        return source
    return f"{source} with overrides {' '.join(shlex.quote(o) for o in overrides)}"
