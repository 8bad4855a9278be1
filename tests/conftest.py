"""Shared fixtures: real git repositories and real DVC in temporary folders.

``project`` is the reference instance (conf/, dvc.yaml, params.yaml, data/...) in a fresh
git repository with DVC initialised, exactly as a user's clone would look. It and
``reproduced_template`` are built once per run (tests/projects.py) and copied.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.projects import (  # noqa: F401  (re-exported: the tests import them from here)
    BIN,
    PROJECT_FILES,
    REPRO_LOG,
    ROOT,
    TINY_OVERRIDES,
    build_fresh,
    build_reproduced,
    built_once,
    copy_project,
    git,
    make_project,
    run,
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


@pytest.fixture(scope="session")
def fresh_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference instance, committed, nothing run: copy it, never run anything in it."""
    return built_once(tmp_path_factory, "fresh", build_fresh) / "project"


@pytest.fixture(scope="session")
def reproduced_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference instance after one `dvc repro` with TINY_OVERRIDES, committed.

    Built once per run for all workers; ``reproduced_template.parent / REPRO_LOG`` holds
    that run's output. Copy it (``copy_project``), never run anything in it.
    """
    return built_once(tmp_path_factory, "reproduced", build_reproduced) / "project"


@pytest.fixture
def project(fresh_template: Path, tmp_path: Path) -> Path:
    """A fresh git + DVC repository holding the reference instance (a copy of ``fresh_template``)."""
    return copy_project(fresh_template, tmp_path / "project")


@pytest.fixture
def gitml_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``gitml_main(*args, cwd=...)``: `gitml ARGS` in this process, through the console entry point.

    Returns and checks what ``run`` does (returncode, stdout, stderr) without the 5-7 s a
    new process spends importing torch, pandas and scikit-learn. Tests about the process
    itself (a kill, a fresh interpreter's imports) keep a subprocess.
    """
    from gitml.cli import main

    def invoke(*args: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["gitml", *map(str, args)]
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", argv)
        capsys.readouterr()
        code: int | str | None = 0
        try:
            main()
        except SystemExit as exited:  # click's standalone mode always exits
            code = exited.code
        out = capsys.readouterr()
        result = subprocess.CompletedProcess(argv, code if isinstance(code, int) else 1, out.out, out.err)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {result.returncode}\n"
                                 f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
        return result

    return invoke


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
