"""The report's types: one :class:`Check` per line, the :class:`Context` checks share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("ok", "warn", "fail")


@dataclass
class Check:
    """One line of the report: ``fix`` says what to do when ``status`` is warn or fail."""

    section: str
    name: str
    status: str
    detail: str
    fix: str | None = None

    def line(self) -> str:
        fix = f" -> fix: {self.fix}" if self.fix and self.status != "ok" else ""
        return f"{self.status:<5}{self.section + ' ' + self.name:<26} {self.detail}{fix}"


@dataclass
class Context:
    """What the checks share: where the project is and its config (None when unreadable)."""

    cwd: Path
    root: Path | None  # git top level; None outside a repository
    params_file: Path
    conf_dir: Path
    cfg: Any = None  # with several models: the first model's (the settings they share come from there)
    cfg_error: Exception | None = None
    models: dict[str, Any] = field(default_factory=dict)  # name -> config, in a repository of several models
    skip: set[str] = field(default_factory=set)

    @property
    def project(self) -> Path:
        return self.root or self.cwd


def ok(section: str, name: str, detail: str) -> Check:
    return Check(section, name, "ok", detail)


def problem(status: str, section: str, name: str, detail: str, fix: str) -> Check:
    return Check(section, name, status, detail, fix)


def without_credentials(url: str) -> str:
    """A remote URL minus any ``user:token@`` part (CI clones often carry a token there)."""
    return re.sub(r"(?<=://)[^/@]+@", "", url)

