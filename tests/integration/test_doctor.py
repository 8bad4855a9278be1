"""``gitml doctor`` on real git and DVC repositories in temporary folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gitml import doctor
from gitml.cli import app
from tests.conftest import ROOT, copy_project, git, run


def _doctor(project: Path, monkeypatch: pytest.MonkeyPatch, *args: str):
    monkeypatch.chdir(project)
    return CliRunner().invoke(app, ["doctor", *args])


@pytest.fixture
def healthy(fresh_template: Path, tmp_path: Path) -> Path:
    """The reference instance with an origin, a default DVC remote, its registry and workflows."""
    project = copy_project(fresh_template, tmp_path / "project")
    shutil.copy2(ROOT / "artifacts.yaml", project / "artifacts.yaml")
    shutil.copytree(ROOT / ".github", project / ".github")
    git("init", "-q", "--bare", str(tmp_path / "origin.git"), cwd=tmp_path)
    git("remote", "add", "origin", str(tmp_path / "origin.git"), cwd=project)
    run("dvc", "remote", "add", "-d", "storage", str(tmp_path / "dvc-store"), cwd=project)
    git("add", "artifacts.yaml", ".github", ".dvc/config", cwd=project)
    git("commit", "-q", "-m", "registry, workflows, DVC remote", cwd=project)
    return project


def test_healthy_project_is_all_ok(healthy, monkeypatch, forge_token):
    monkeypatch.setenv("GITML_TOKEN", forge_token)
    result = _doctor(healthy, monkeypatch)
    assert result.exit_code == 0, result.output
    not_ok = [line for line in result.output.splitlines()[:-1] if not line.startswith("ok ")]
    acceptable = ("warn environment serve extra",)  # a machine without the serve extra
    assert all(line.startswith(acceptable) for line in not_ok), result.output
    for expected in ("git remote", "dvc remote", "dvc hydra", "config sync", "registry stage prod", "forge token"):
        assert f" {expected} " in result.output
    assert "storage ->" in result.output and "GITML_TOKEN is set" in result.output


def test_no_dvc_remote_warns_with_the_fix(project, monkeypatch):
    result = _doctor(project, monkeypatch)
    assert result.exit_code == 0, result.output  # warnings do not fail
    line = next(line for line in result.output.splitlines() if " dvc remote " in line)
    assert line.startswith("warn") and "fix: dvc remote add -d storage <url>" in line


def test_params_edited_out_of_sync_fails_naming_the_key(project, monkeypatch):
    params = project / "params.yaml"
    text = params.read_text()
    assert "  epochs: 30\n" in text
    params.write_text(text.replace("  epochs: 30\n", "  epochs: 7\n"))
    result = _doctor(project, monkeypatch)
    assert result.exit_code == 1, result.output
    line = next(line for line in result.output.splitlines() if " config sync " in line)
    assert line.startswith("fail")
    assert "trainer.epochs: conf/ composes to 30, params has 7" in line
    assert "gitml config compose" in line
    assert any(line.startswith("warn git working tree") and "params.yaml" in line
               for line in result.output.splitlines())


def test_outside_a_git_repository_fails_clearly(tmp_path):
    out = subprocess.run([sys.executable, "-m", "gitml", "doctor"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr + out.stdout
    line = next(line for line in out.stdout.splitlines() if " git repository " in line)
    assert line.startswith("fail") and "is not inside a git repository" in line and "fix:" in line
    assert " registry " not in out.stdout  # the registry is git tags: not checked outside git


def test_json_lists_the_same_checks(project, monkeypatch):
    text = _doctor(project, monkeypatch)
    as_json = _doctor(project, monkeypatch, "--json")
    assert as_json.exit_code == text.exit_code == 0
    checks = json.loads(as_json.output)
    lines = text.output.splitlines()[:-1]
    assert len(checks) == len(lines)
    for check, line in zip(checks, lines, strict=True):
        assert set(check) == {"section", "name", "status", "detail", "fix"}
        assert line.split()[0] == check["status"]
        assert f"{check['section']} {check['name']}" in line and check["detail"] in line
        assert (check["fix"] is None) == (check["status"] == "ok")


def test_a_token_never_appears_in_the_output(project, tmp_path, forge_token):
    # CI clones often carry the token in the remote URL too.
    git("remote", "add", "origin", f"https://x-access-token:{forge_token}@github.com/acme/app.git", cwd=project)
    for args in (["--verbose", "doctor"], ["doctor", "--json"]):
        out = subprocess.run(
            [sys.executable, "-m", "gitml", *args], cwd=project, capture_output=True, text=True,
            env={**os.environ, "GITML_TOKEN": forge_token, "GITHUB_TOKEN": forge_token},
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert forge_token not in out.stdout + out.stderr
        assert "GITML_TOKEN is set" in out.stdout and "github.com/acme/app.git" in out.stdout


def test_a_check_that_raises_becomes_one_fail(tmp_path, monkeypatch):
    def broken(ctx):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(doctor, "CHECKS", (("environment", "python", doctor.environment.check_python),
                                           ("dvc", "remote", broken)))
    checks = doctor.diagnose(tmp_path)
    assert [(c.name, c.status) for c in checks] == [("python", "ok"), ("remote", "fail")]
    assert "RuntimeError: disk on fire" in checks[1].detail and checks[1].fix
    with pytest.raises(RuntimeError):
        doctor.diagnose(tmp_path, raise_errors=True)
