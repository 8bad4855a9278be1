"""``gitml doctor``: is this machine and this repository ready for the gitml loop?

Each check returns :class:`Check` results (ok / warn / fail) with, for warn and fail, the
fix: a command to run or the file and key to edit. A check that raises becomes one fail
naming the exception, so the report always completes. Checks read; they never write,
fetch or print a secret's value.

Example:
    >>> checks = diagnose(".")
    >>> [c.name for c in checks if c.status == "fail"]
    []
"""


from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gitml.doctor import environment as env
from gitml.doctor import project as repo
from gitml.doctor.base import STATUSES, Check, Context
from gitml.errors import GitmlError

__all__ = ["CHECKS", "Check", "diagnose", "summary_line", "to_json"]

CHECKS: tuple[tuple[str, str, Callable[[Context], list[Check]]], ...] = (
    ("environment", "python", env.check_python),
    ("environment", "packages", env.check_packages),
    ("environment", "serve extra", env.check_serve_extra),
    ("environment", "commands", env.check_commands),
    ("environment", "device", env.check_device),
    ("git", "repository", repo.check_repository),
    ("git", "remote", repo.check_git_remote),
    ("git", "working tree", repo.check_worktree),
    ("dvc", "initialised", repo.check_dvc_init),
    ("dvc", "remote", repo.check_dvc_remote),
    ("dvc", "hydra", repo.check_dvc_hydra),
    ("config", "params", repo.check_params_valid),
    ("config", "sync", repo.check_params_sync),
    ("registry", "artifact", repo.check_artifact),
    ("registry", "stages", repo.check_stages),
    ("forge", "token", repo.check_token),
    ("forge", "workflows", repo.check_workflows),
)
NEEDS_GIT = {"git remote", "git working tree", "registry artifact", "registry stages"}


def diagnose(
    path: str | Path = ".", params_file: str | Path = "params.yaml", conf_dir: str | Path = "conf",
    raise_errors: bool = False,
) -> list[Check]:
    """Run every check from ``path``; relative ``params_file`` and ``conf_dir`` are taken
    from the repository root. ``raise_errors`` lets a crashing check raise (``--traceback``)."""
    from gitml.gitops.git import repo_root

    cwd = Path(path).resolve()
    try:
        root: Path | None = repo_root(cwd)
    except (GitmlError, OSError):
        root = None
    project = root or cwd
    ctx = Context(cwd, root, project / params_file, project / conf_dir)
    try:
        from gitml.config.models import declared_in
        from gitml.config.params import load_params

        for name in declared_in(ctx.params_file):
            ctx.models[name] = load_params(ctx.params_file, name)
        ctx.cfg = next(iter(ctx.models.values())) if ctx.models else load_params(ctx.params_file)
    except Exception as exc:  # reported by the config check; the others fall back to defaults
        ctx.cfg_error = exc
    if root is None:
        ctx.skip.update(NEEDS_GIT)
    checks: list[Check] = []
    for section, name, check in CHECKS:
        if f"{section} {name}" in ctx.skip:
            continue
        try:
            checks.extend(check(ctx))
        except Exception as exc:
            if raise_errors:
                raise
            checks.append(Check(section, name, "fail", f"the check raised {type(exc).__name__}: {exc}",
                                "gitml --traceback doctor shows where; report it if it is not about your setup"))
    return checks


def to_json(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(check) for check in checks]


def summary_line(checks: list[Check]) -> str:
    counts = {status: sum(c.status == status for c in checks) for status in STATUSES}
    return "doctor: " + ", ".join(f"{n} {status}" for status, n in counts.items())
