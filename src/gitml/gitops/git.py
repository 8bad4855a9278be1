"""Thin, explicit git plumbing: every call names its repository and fails with git's words."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gitml.errors import GitError, GitmlError


def git(repo: str | Path, *args: str, check: bool = True, strip: bool = True, timeout: float | None = None) -> str:
    try:
        result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args)} timed out after {timeout:g} s in {repo}") from None
    if check and result.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip() if strip else result.stdout


def repo_root(path: str | Path = ".") -> Path:
    try:
        return Path(git(path, "rev-parse", "--show-toplevel"))
    except GitError as exc:
        raise GitmlError(f"'{Path(path).resolve()}' is not inside a git repository.") from exc


def head_commit(repo: str | Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def dirty_files(repo: str | Path) -> list[str]:
    """Tracked files with uncommitted changes (untracked files do not count)."""
    out = git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=no", strip=False)
    # -z: NUL-separated "XY path" records, no quoting, and no stripping of the leading space
    return [record[3:] for record in out.split("\0") if len(record) > 3]


def show_file(repo: str | Path, commit: str, path: str) -> str | None:
    result = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def has_remote(repo: str | Path, remote: str) -> bool:
    return remote in git(repo, "remote").split()
