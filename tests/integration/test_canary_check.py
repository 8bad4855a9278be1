"""``gitml canary check`` (issue 17 item 2): a degraded canary is rolled back, a healthy one promoted.

The logs are written by a real in-process server following a target with a 50/50 split of v1
and v2, with labels posted to /feedback (the truth follows v1's rule, x0 > 0); a degraded v2
predicts by another feature (x1 > 0). The pull requests go to the forge stand-in over a bare
origin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gitml.cli import app
from gitml.config.compose import compose, to_plain
from gitml.config.schema import CanaryConfig, ServeConfig
from gitml.delivery.run import canary_check
from gitml.serve.app import create_app
from gitml.serve.deployment import publish, publish_split, read_split
from gitml.serve.state import ServeSettings, ServeState
from gitml.serve.traffic import Split, read_traffic_file
from gitml.testing.forge_stub import ForgeStub
from tests.alert_receiver import Receiver
from tests.projects import ROOT
from tests.tiny_bundles import FEATURES, tiny_bundle

SPLIT = Split((("v1", 50), ("v2", 50)))
REQUESTS = 240  # about 120 rows per version
SETTINGS = CanaryConfig(min_rows=60, min_labels=40, resamples=300, hard_metric_drop=0.6)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def served_logs(root: Path, v1: Path, v2: Path, requests: int = REQUESTS) -> tuple[Path, Path]:
    """A target serving v1/v2 at 50/50 and the logs of ``requests`` keyed requests, each labelled."""
    target, logs = root / "target", root / "logs"
    publish(v1, target, "v1")
    publish(v2, target, "v2", point=False)
    publish_split(target, SPLIT)
    rng = np.random.default_rng(0)
    settings = ServeSettings(models=[["model", "deployment", str(target)]], cfg=ServeConfig(log_dir=str(logs)))
    with TestClient(create_app(ServeState(settings))) as client:
        for i in range(requests):
            row = dict(zip(FEATURES, rng.normal(size=len(FEATURES)).round(3).tolist(), strict=True))
            answer = client.post("/invocations", json={"dataframe_records": [row]}, headers={"x-gitml-key": f"k{i}"})
            assert answer.status_code == 200
            label = {"request_id": answer.headers["x-request-id"], "labels": [int(row["x0"] > 0)]}
            assert client.post("/feedback", json=label).status_code == 200
    return target, logs / "model" if (logs / "model").is_dir() else logs


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("canary-check")
    return {"v1": tiny_bundle(root / "v1", version="v1", rule=0), "good": tiny_bundle(root / "good", version="v2", rule=0),
            "bad": tiny_bundle(root / "bad", version="v2", rule=1)}


@pytest.fixture
def repo(tmp_path, monkeypatch, forge_token) -> Path:
    """A repository whose main holds deploy/model.yaml at v1 50 / v2 50 (key x-customer), pushed to a bare origin."""
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "t@example.com")
    git(work, "config", "user.name", "t")
    (work / "deploy").mkdir()
    (work / "deploy/model.yaml").write_text("versions:\n  v1: 50\n  v2: 50\nkey: x-customer\n")  # the key stays
    git(work, "add", "deploy")
    git(work, "commit", "-q", "-m", "canary v2 at 50%")
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-q", "origin", "main")
    monkeypatch.chdir(work)  # no params.yaml here: the defaults, with SETTINGS for canary.*
    monkeypatch.setenv("GITML_TOKEN", forge_token)
    return work


def check(repo: Path, stub: ForgeStub, logs: Path, settings: CanaryConfig = SETTINGS, params_file=None, **options):
    return canary_check(params_file, log_dir=str(logs), out=repo.parent / "report", repo_slug="acme/app",
                        forge_url=stub.url, repo=repo, settings=settings, **options)


def branch_file(repo: Path) -> Split:
    git(repo, "fetch", "-q", "origin", "+refs/heads/gitml/canary/model:refs/remotes/origin/gitml/canary/model")
    text = git(repo, "show", "origin/gitml/canary/model:deploy/model.yaml")
    (repo.parent / "proposed.yaml").write_text(text)
    return read_traffic_file(repo.parent / "proposed.yaml")


def test_a_degraded_canary_is_rolled_back_by_a_pull_request_then_directly(bundles, repo, tmp_path, forge_token):
    target, logs = served_logs(tmp_path, bundles["v1"], bundles["bad"])
    with ForgeStub(token=forge_token, git_dir=tmp_path / "origin.git") as stub:
        # Without labels the wrong rule is invisible: both versions predict 1 for about half the rows.
        blind = check(repo, stub, logs, settings=CanaryConfig(**{**SETTINGS.__dict__, "min_labels": 10_000}))
        assert blind.verdict == "promote" and blind.pull_action == "opened"
        assert branch_file(repo) == Split((("v2", 100),), key="x-customer")

        first = check(repo, stub, logs, target=str(target))
        assert first.verdict == "rollback" and first.exit_code == 1 and first.proposed == {"v1": 100}
        assert first.pull_action == "updated" and first.pull_request == blind.pull_request  # a new commit, same PR
        assert not first.hard and not first.applied  # below canary.hard_metric_drop: a pull request only
        (comparison,) = first.comparisons
        metric = next(c for c in comparison.checks if c.name == "metric:accuracy")
        assert metric.failed and metric.stable > 0.9 and metric.canary < 0.75 and metric.p_value < 0.05
        assert branch_file(repo) == Split((("v1", 100),), key="x-customer")
        (pull,) = stub.open_pulls()
        assert pull["head"]["ref"] == "gitml/canary/model" and "metric:accuracy" in pull["body"]
        assert pull["title"] == "Canary model: rollback (v1 100%)"
        assert "rollback" in stub.comments_on(pull["number"])[-1]["body"]
        assert read_split(target)[0] == SPLIT  # what the servers do is unchanged
        assert git(repo, "status", "--porcelain") == "" and git(repo, "branch", "--show-current").strip() == "main"

        # Past the hard limit with apply_rollback: the target is rolled back now, the same pull request says so,
        # and the webhooks listening for canary verdicts are told (params composed from conf/ with one).
        hard = CanaryConfig(**{**SETTINGS.__dict__, "hard_metric_drop": 0.1, "apply_rollback": True})
        with Receiver() as hook:
            params = tmp_path / "params.yaml"
            params.write_text(yaml.safe_dump({**to_plain(compose(ROOT / "conf", ["registry.model=model"])),
                                              "alerts": {"webhooks": [{"url": hook.url, "events": ["canary"]}]}}))
            second = check(repo, stub, logs, settings=hard, target=str(target), params_file=params)
        assert second.applied and second.pull_action == "unchanged"
        [alert] = hook.received
        assert alert.body["event"] == "canary" and alert.body["version"] == "v2"
        assert alert.body["details"]["verdict"] == "rollback" and alert.body["details"]["applied"] is True
        assert alert.body["details"]["pull_request"] == first.pull_request
        assert read_split(target)[0] == Split((("v1", 100),), key="x-customer")
        (pull,) = stub.open_pulls()
        assert "rollback was applied" in pull["body"]
    report = json.loads((tmp_path / "report" / "canary.json").read_text())
    assert report["verdict"] == "rollback" and report["applied"] is True


def test_a_healthy_canary_is_promoted_once_and_too_few_rows_wait(bundles, repo, tmp_path, forge_token):
    _, logs = served_logs(tmp_path, bundles["v1"], bundles["good"])
    with ForgeStub(token=forge_token, git_dir=tmp_path / "origin.git") as stub:
        waiting = check(repo, stub, logs, settings=CanaryConfig(**{**SETTINGS.__dict__, "min_rows": 1000}))
        assert waiting.verdict == "wait" and waiting.exit_code == 0 and not waiting.proposed
        assert "fewer than canary.min_rows=1000" in " ".join(waiting.reasons) and stub.open_pulls() == []

        first = check(repo, stub, logs)
        assert first.verdict == "promote" and first.exit_code == 0 and first.pull_action == "opened"
        assert branch_file(repo) == Split((("v2", 100),), key="x-customer")
        again = check(repo, stub, logs)
        assert again.verdict == "promote" and again.pull_action == "unchanged"
        assert again.pull_request == first.pull_request and len(stub.pulls) == 1  # the same one, not a second

    # The command: the default settings want 200 rows per version, so it waits (exit 0) and opens nothing.
    done = CliRunner().invoke(app, ["canary", "check", "--log-dir", str(logs), "--no-pr"])
    assert done.exit_code == 0 and "canary check of model: wait" in done.output
    (repo / "deploy/model.yaml").unlink()  # no verdict possible: exit 2, one line naming the file
    failed = subprocess.run([sys.executable, "-m", "gitml", "canary", "check", "--log-dir", str(logs), "--no-pr"],
                            cwd=repo, capture_output=True, text=True)
    assert failed.returncode == 2 and "deploy/model.yaml" in failed.stderr
