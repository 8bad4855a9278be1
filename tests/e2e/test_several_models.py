"""Three models in one repository, through the whole loop: a change to one model's config
retrains, gates, promotes and deploys that model alone, and the server swaps it alone under
traffic to all three with no failed request.

Every step is the real command a person or a workflow runs (gitml init --models, dvc repro,
gitml models changed, gitml promote/fetch/deploy --model, gitml serve with one followed
deployment per model), against a bare git origin and a local DVC remote. The gitml commands
run in this process through the console entry point (``gitml_main``), except the server and
the stages dvc repro starts: the same code, without a 2-4 s interpreter start each.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pandas as pd
import pytest

from gitml.monitor.logs import read_requests
from tests.integration.serve.conftest import Server
from tests.integration.serve.load import Load, wait_for_metric, wait_for_swap
from tests.projects import git, run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODELS = {"churn": "breast_cancer:logreg", "quality": "wine:hgb", "price": "diabetes:ridge"}
# Quick gate and server settings for every model, where a project keeps its shared values:
# conf/config.yaml's own body (after its defaults).
SHARED = """
gate:
  significance:
    n_resamples: 200
  budgets:
    latency_samples: 50
serve:
  follow_interval_seconds: 0.2
  log_flush_seconds: 0.5
"""


def stages_run(repro_output: str) -> set[str]:
    return {line.split("'")[1] for line in repro_output.splitlines() if line.startswith("Running stage '")}


def release(gitml, project: Path, world: Path, model: str, stage: str = "prod") -> str:
    """What the promote and deploy workflows do for one model; returns the deployed version."""
    gitml("promote", "--model", model, "--stage", stage, "--push", cwd=project)
    version = gitml("registry", "which", stage, "--model", model, cwd=project).stdout.strip()
    fetched = world / "fetched" / f"{model}-{version}"
    gitml("fetch", "--model", model, "--version", version, "-o", fetched, cwd=project)
    gitml("deploy", "--model", model, "--bundle", fetched, "--target", world / "deploy" / model,
          "--version", version, cwd=project)
    return version


def test_a_change_to_one_model_retrains_promotes_and_swaps_only_that_model(tmp_path: Path, gitml_main):
    world, gitml = tmp_path, gitml_main
    project = world / "project"
    gitml("init", project, *[f"--models={name}:{spec}" for name, spec in MODELS.items()], cwd=world)
    with (project / "conf/config.yaml").open("a") as config:
        config.write(SHARED)
    gitml("config", "compose", cwd=project)
    git("init", "-q", "--bare", "-b", "main", str(world / "origin.git"), cwd=world)
    git("remote", "add", "origin", str(world / "origin.git"), cwd=project)
    run("dvc", "remote", "add", "-d", "storage", str(world / "dvc-remote"), cwd=project)

    # CI on main: every model's chain runs once; the data, models and run-cache go to the remote.
    first = run("dvc", "repro", cwd=project).stdout
    assert stages_run(first) == {f"{s}@{m}" for s in ("ingest", "validate", "prepare", "train", "evaluate",
                                                     "package", "gate") for m in MODELS}
    run("dvc", "push", "-q", "--run-cache", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "three models", cwd=project)
    git("push", "-q", "origin", "main", cwd=project)
    first_versions = {name: release(gitml, project, world, name) for name in MODELS}
    assert first_versions == dict.fromkeys(MODELS, "v1.0.0")

    server = Server(project, *[f"--deployment={name}={world / 'deploy' / name}" for name in MODELS],
                    "--follow", "--workers", "2", "--log-dir", world / "logs").wait_ready()
    rows = {name: pd.read_parquet(project / f"data/{name}/prepared/test.parquet").drop(columns=["target"]).head(5)
            for name in MODELS}

    def sender(name: str):
        body = {"dataframe_split": rows[name].to_dict(orient="split", index=False)}
        return lambda client, *_: client.post("/invocations", json=body, headers={"x-gitml-model": name})

    loads = {name: Load(server.url, sender(name)) for name in MODELS}
    with contextlib.ExitStack() as running:
        for load in loads.values():
            running.enter_context(load)
        # A pull request tunes churn alone: its CI reruns churn's training chain only.
        git("checkout", "-q", "-b", "tune-churn", cwd=project)
        churn = project / "conf/models/churn.yaml"
        churn.write_text(churn.read_text() + "model:\n  estimator:\n    C: 0.3\n")
        gitml("config", "compose", cwd=project)
        tuned = run("dvc", "repro", cwd=project).stdout
        assert stages_run(tuned) == {"train@churn", "evaluate@churn", "package@churn", "gate@churn"}
        assert gitml("models", "changed", "--base", "main", cwd=project).stdout.split() == ["churn"]
        gitml("report", "--model", "churn", "--base", "main", "-o", world / "pr-churn.md", cwd=project)
        report = (world / "pr-churn.md").read_text()
        assert "## gitml model report: churn" in report and "models.churn.model.estimator.C" in report
        assert "reports/churn/metrics.json" in report and "reports/price" not in report
        run("dvc", "push", "-q", "--run-cache", cwd=project)
        git("add", "-A", cwd=project)
        git("commit", "-q", "-m", "churn: stronger regularisation", cwd=project)
        git("checkout", "-q", "main", cwd=project)
        git("merge", "-q", "--no-ff", "-m", "Merge tune-churn", "tune-churn", cwd=project)
        git("push", "-q", "origin", "main", cwd=project)

        # The merge: the promote job promotes the models the merge changed, the deploy job deploys them.
        changed = gitml("models", "changed", "--base", "HEAD^1", cwd=project).stdout.split()
        assert changed == ["churn"]
        for name in changed:
            gitml("gate", "verify", "--model", name, cwd=project)
            assert release(gitml, project, world, name) == "v1.1.0"

        wait_for_swap(loads["churn"], "v1.1.0", "churn")
        time.sleep(0.3)
    errors = [f"{name}: {error}" for name, load in loads.items() for error in load.errors]
    assert not errors, errors[:5]
    assert loads["churn"].versions[0] == "v1.0.0"
    assert set(loads["quality"].versions) == {"v1.0.0"} and set(loads["price"].versions) == {"v1.0.0"}
    assert min(len(load.answers) for load in loads.values()) > 20
    # Once in each worker (the answers above may all have come from one worker's connection).
    metrics = wait_for_metric(server.url, 'gitml_model_reloads_total{model="churn"} 2.0')
    assert 'gitml_model_reloads_total{model="quality"} 0.0' in metrics
    assert server.stop() == 0

    # The registry: a second version of churn only; the others keep their one version.
    tags = set(git("tag", "--list", cwd=project).stdout.split())
    assert {t for t in tags if "@" in t} == {"churn@v1.0.0", "churn@v1.1.0", "quality@v1.0.0", "price@v1.0.0"}
    logged = {name: set(read_requests(world / "logs" / name)["model_version"]) for name in MODELS}
    assert logged == {"churn": {"v1.0.0", "v1.1.0"}, "quality": {"v1.0.0"}, "price": {"v1.0.0"}}

    # traffic.yml: a reviewed deploy/churn.yaml sends churn back to v1.0.0; applied, churn's prod follows,
    # and no other model's stage or target moves.
    (project / "deploy").mkdir(exist_ok=True)
    (project / "deploy/churn.yaml").write_text("versions:\n  v1.0.0: 100\n")
    applied = gitml("deploy", "--model", "churn", "--target", world / "deploy" / "churn", "--traffic",
                    project / "deploy/churn.yaml", "--stage", "prod", "--push", cwd=project).stdout
    assert "churn v1.0.0 assigned to 'prod'" in applied and "pushed" in applied
    prod = {name: gitml("registry", "which", "prod", "--model", name, cwd=project).stdout.strip() for name in MODELS}
    assert prod == {"churn": "v1.0.0", "quality": "v1.0.0", "price": "v1.0.0"}
    # churn's only: v1.1.0 gives prod up (an unassignment: `which` takes the highest version holding it),
    # v1.0.0 takes it; both tags on origin
    new = sorted(set(git("tag", "--list", cwd=project).stdout.split()) - tags)
    assert [tag.split("#")[:2] for tag in new] == [["churn", "prod!"], ["churn", "prod"]], new
    remote = git("ls-remote", "--tags", "origin", cwd=project).stdout
    assert all(f"refs/tags/{tag}" in remote for tag in new)
