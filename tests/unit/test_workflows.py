"""The GitHub Actions workflows: least privilege, pinned, and running our commands.

The linters (actionlint, zizmor) and the token script run as subprocesses, in
tests/integration/test_workflow_tools.py.
"""

from __future__ import annotations

import re
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
    ("canary.yml", "canary"): {"contents", "pull-requests"},  # promote or rollback branch and PR
    ("traffic.yml", "traffic"): {"contents"},  # the prod tag of a version a traffic file gives 100%
    ("deploy.yml", "image"): {"packages"},  # push the image of the promoted version
}


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def test_there_is_a_workflow_per_part_of_the_loop():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "promote.yml", "deploy.yml", "drift.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_job_keeps_git_credentials_after_checkout(path):
    """A token in .git/config is readable by every later step, including the PR's own code."""
    for name, job in load(path)["jobs"].items():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert (step.get("with") or {}).get("persist-credentials") is False, f"{path.name}:{name}"
            if re.search(r"git push|--push|retrain-pr|gitml drift run|gitml canary check|gitml fetch|gitml registry which",
                         step.get("run", "")):
                # A command that reaches the git remote (push; fetch and registry which sync the
                # stage tags, fetch checks the default branch) gets its token in its environment only.
                assert "with-git-token.sh" in step["run"], f"{path.name}:{name}: {step['name']}"
                assert "GIT_TOKEN" in (step.get("env") or {}), f"{path.name}:{name}: {step['name']}"


def test_the_retraining_branch_is_pushed_with_gitml_token_when_set():
    """GITHUB_TOKEN pushes start no workflow: only GITML_TOKEN makes CI run on the branch."""
    step = next(s for s in load(ROOT / ".github/workflows/drift.yml")["jobs"]["drift"]["steps"]
                if re.search(r"retrain-pr|gitml drift run", s.get("run", "")))
    for var in ("GIT_TOKEN", "GITML_TOKEN"):
        assert step["env"][var] == "${{ secrets.GITML_TOKEN || secrets.GITHUB_TOKEN }}", var
    assert "CI will NOT run" in step["run"]  # the fallback says so in the job log


def test_deploy_restores_no_cache_a_pull_request_could_have_written():
    text = (ROOT / ".github/workflows/deploy.yml").read_text()
    assert not re.search(r"^\s*cache:|actions/cache@", text, re.MULTILINE)


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


def test_deploy_builds_the_promoted_versions_image_and_commits_manifests_naming_it():
    jobs = load(ROOT / ".github/workflows/deploy.yml")["jobs"]
    build = next(s["run"] for s in jobs["image"]["steps"] if "docker build" in s.get("run", ""))
    assert '-f deploy/Dockerfile --build-arg BUNDLE=bundle' in build
    # an existing tag is never pushed over: servers may already run it
    assert build.index("docker manifest inspect") < build.index("docker build") < build.index("docker push")
    assert "--password-stdin" in build and "REGISTRY_TOKEN" in jobs["image"]["steps"][-1]["env"]
    manifests = jobs["manifests"]
    assert manifests["needs"] == "image" and manifests["env"]["VERSION"] == "${{ needs.image.outputs.version }}"
    write = next(s["run"] for s in manifests["steps"] if "--target k8s" in s.get("run", ""))
    assert '--version "$VERSION" --image "$IMAGE"' in write
    # the production folder deploy still runs when no image is configured (and says what to set)
    assert jobs["deploy"]["if"] == "vars.GITML_DEPLOY_TARGET != '' || vars.GITML_IMAGE == ''"
