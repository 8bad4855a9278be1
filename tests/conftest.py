"""Shared fixtures: real git repositories and real DVC in temporary folders.

``project`` lays out the reference instance (conf/, dvc.yaml, params.yaml, data/...) in
a fresh git repository with DVC initialised, exactly as a user's clone would look.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# What a clone of the reference instance holds besides the package itself.
PROJECT_FILES = (
    "conf", "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore",
    "data/external", "data/production/README.md",
)


def pytest_configure(config: pytest.Config) -> None:
    # Subprocesses (dvc, gitml, git) must find the venv's tools and never phone home.
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["DVC_NO_ANALYTICS"] = "1"
    # One compute thread per process, as `gitml serve` runs its workers: the models here are
    # tiny, and while another process is busy (a server and its clients, a second xdist
    # worker) torch's threads wait on each other: an epoch of 1 s took 5 s beside one busy
    # process and 130 s beside two on a 2-core machine. Set OMP_NUM_THREADS to test more.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("GIT_AUTHOR_NAME", "gitml tests")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "tests@gitml.invalid")
    os.environ.setdefault("GIT_COMMITTER_NAME", "gitml tests")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "tests@gitml.invalid")


def run(*args: str | Path, cwd: Path, check: bool = True, env: dict[str, str] | None = None):
    """Run a command; on unexpected failure show its output in the assertion."""
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def git(*args: str, cwd: Path, check: bool = True):
    return run("git", *args, cwd=cwd, check=check)


def make_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", cwd=dest)
    run("dvc", "init", "-q", cwd=dest)
    for name in PROJECT_FILES:
        src = ROOT / name
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target)
        else:
            shutil.copy2(src, target)
    run("dvc", "config", "core.autostage", "true", cwd=dest)
    run("dvc", "config", "hydra.enabled", "true", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "project from the gitml reference instance", cwd=dest)
    return dest


def copy_project(template: Path, dest: Path) -> Path:
    """A copy of a project a module fixture built: git history, DVC cache and outputs included.

    Copying costs a fraction of a second where rerunning the pipeline costs tens; DVC
    rehashes the copied files (new inodes) and finds them up to date.
    """
    shutil.copytree(template, dest, symlinks=True)
    return dest


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh git + DVC repository holding the reference instance."""
    return make_project(tmp_path / "project")


@pytest.fixture
def conf_dir() -> Path:
    return ROOT / "conf"


# ------------------------------------------------------------------ forge (GitHub stand-in)


@pytest.fixture
def forge_token() -> str:
    """A fresh token per test, so a leak can be grepped for without false hits."""
    import secrets

    return f"ghp_test{secrets.token_hex(16)}"


@pytest.fixture
def forge_stub(forge_token: str):
    """A local server speaking gitml's subset of GitHub's REST API (page size 2)."""
    from gitml.testing.forge_stub import ForgeStub

    with ForgeStub(token=forge_token, repo="acme/app", page_size=2) as stub:
        yield stub
