"""Projects for the tests: one shrunken config, and projects built once per run and copied.

Building a project costs a `git init`, a `dvc init` and two `dvc config` (seconds); its first
`dvc repro` costs seven stage subprocesses, each importing torch, pandas and scikit-learn
(about a minute). Tests copy a template instead (``copy_project``: a fraction of a second),
and the template is built once for the whole run, shared by every xdist worker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # benchmarks/ import this module's TINY_OVERRIDES without pytest
    import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# What a clone of the reference instance holds besides the package itself.
PROJECT_FILES = (
    "conf", "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore",
    "data/external", "data/production/README.md",
)
# The one shrink list (lightning-hydra-template's conftest): every test that trains composes
# the real conf/ with these and adds only what it is about.
TINY_OVERRIDES = (
    "trainer=cpu",
    "trainer.epochs=3",
    "gate.significance.n_resamples=200",
    "gate.budgets.latency_samples=50",
)
REPRO_LOG = "repro.log"  # beside a template: the output of its first `dvc repro`


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
    """A fresh git + DVC repository holding the reference instance, committed."""
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
    """A copy of a built project: git history, DVC cache and outputs included.

    DVC rehashes the copied files (new inodes) and finds them up to date. The DVC cache is
    inside the project (`.dvc/cache`), so a copy shares nothing with its template; a DVC
    remote named by absolute path would still point at the template's.
    """
    shutil.copytree(template, dest, symlinks=True)
    return dest


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``build(folder)`` filled, built once per test run for every xdist worker.

    pytest-xdist's recipe: a session fixture runs once per worker, so the first worker
    builds under a file lock in the run's shared temporary folder and the others wait and
    reuse it. Never run anything inside the result (DVC writes `.dvc/tmp` even to read):
    copy it.
    """
    from filelock import FileLock  # a DVC dependency

    base = factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / name
    done = shared / f"{name}.built"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


def build_fresh(folder: Path) -> None:
    """``folder/project``: the reference instance, committed, nothing run."""
    make_project(folder / "project")


def build_reproduced(folder: Path) -> None:
    """``folder/project``: the reference instance after `dvc repro` with TINY_OVERRIDES, committed.

    ``folder/repro.log`` keeps that first run's output (which stages ran).
    """
    project = make_project(folder / "project")
    run("gitml", "config", "compose", *TINY_OVERRIDES, cwd=project)
    out = run("dvc", "repro", cwd=project)
    (folder / REPRO_LOG).write_text(out.stdout)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "pipeline", cwd=project)


def publish(project: Path, message: str) -> None:
    """What CI does after `dvc repro`: push the data, commit the lock, push the branch."""
    run("dvc", "push", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "--allow-empty", "-m", message, cwd=project)
    git("push", "-q", "origin", "HEAD:main", cwd=project)


def publish_copy(template: Path, world: Path, dvc_remote: str = "../dvc-remote",
                 overrides: tuple[str, ...] = ()) -> Path:
    """``world/project``, a copy of ``template`` whose run is pushed to ``world/origin.git`` and a DVC remote.

    The default remote is named relative to the project, so a copy of ``world`` uses the
    copy's remote; a git worktree outside ``world`` needs an absolute ``dvc_remote``. With
    ``overrides`` params.yaml is composed again first (keys no stage reads, such as serve.*).
    """
    origin = world / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=world)
    project = copy_project(template, world / "project")
    git("remote", "add", "origin", str(origin), cwd=project)
    run("dvc", "remote", "add", "-d", "storage", dvc_remote, cwd=project)
    if overrides:
        run("gitml", "config", "compose", *TINY_OVERRIDES, *overrides, cwd=project)
    publish(project, "train v1")
    return project
