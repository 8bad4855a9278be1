"""A sweep that ends in a pull request: `gitml exp search` proposes four points in two rounds,
DVC's experiment queue runs each (the whole pipeline, gate included) on two workers, and
`gitml exp best` turns the best gated point into a branch whose `dvc repro` is a no-op,
pushes it and opens a pull request on the GitHub stand-in."""

from __future__ import annotations

import json

import pytest

from tests.conftest import git, run
from tests.projects import publish_copy

pytestmark = pytest.mark.slow


def test_a_search_of_four_points_on_two_workers_ends_in_a_branch_and_a_pull_request(
        reproduced_template, tmp_path, forge_stub, forge_token, gitml_main, monkeypatch):
    project = publish_copy(reproduced_template, tmp_path)
    out = gitml_main("exp", "search", "--metric", "test.roc_auc", "--param", "model.dropout=float:0:0.5",
                     "--param", "trainer.epochs=int:2:5", "--trials", "4", "-j", "2", cwd=project).stdout
    lines = [line for line in out.splitlines() if "gitml-search-" in line and "->" in line]
    assert len(lines) == 4 and all("gate pass" in line for line in lines), out
    assert sum(line.startswith("*") for line in lines) == 1
    searched_best = next(line for line in lines if line.startswith("*")).split(":")[0].strip("* ")

    head = git("rev-parse", "HEAD", cwd=project).stdout.strip()
    shown = json.loads(run("dvc", "exp", "show", "--json", cwd=project).stdout)
    ran = {rev["name"]: rev["data"] for entry in shown if entry["rev"] == head
           for group in entry["experiments"] for rev in group["revs"]}
    assert sorted(ran) == [f"gitml-search-{i}" for i in range(4)]  # each point an ordinary gated experiment
    params = [data["params"]["params.yaml"]["data"] for data in ran.values()]
    assert all(0 <= p["model"]["dropout"] <= 0.5 and 2 <= p["trainer"]["epochs"] <= 5 for p in params)
    # each point keeps what params.yaml was composed with (TINY_OVERRIDES), less the searched keys
    assert all(p["gate"]["significance"]["n_resamples"] == 200 for p in params)
    scores = {name: data["metrics"]["reports/metrics.json"]["data"]["test"]["roc_auc"] for name, data in ran.items()}
    expected = max(sorted(scores), key=lambda name: scores[name])  # the first name among equals, as gitml ranks
    assert searched_best == expected

    monkeypatch.setenv("GITML_TOKEN", forge_token)
    picked = gitml_main("exp", "best", "--metric", "test.roc_auc", "--pr", "--repo-slug", "acme/app",
                        "--forge-url", forge_stub.url, cwd=project).stdout
    assert f"best of 4: {expected} (test.roc_auc {scores[expected]:.4g}, gate pass) -> branch exp/{expected}" in picked
    branch = f"exp/{expected}"
    assert git("ls-remote", "origin", branch, cwd=project).stdout.strip()  # pushed
    [pull] = forge_stub.pulls.values()
    assert pull["head"]["ref"] == branch and pull["base"]["ref"] == "main"
    assert f"| **{expected}** |" in pull["body"] and pull["body"].count(" | pass |") == 4
    assert forge_token not in picked

    git("checkout", "-q", branch, cwd=project)
    run("dvc", "checkout", "-q", cwd=project)
    assert "Data and pipelines are up to date" in run("dvc", "repro", cwd=project).stdout
    assert json.loads((project / "reports/gate.json").read_text())["verdict"] == "pass"
    assert git("status", "--porcelain", cwd=project).stdout.strip() == ""
