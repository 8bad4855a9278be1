"""The retraining pull request with a real project, a bare origin, a DVC remote and a GitHub stand-in."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gitml.gitops.forge import ForgeError, GitHubForge
from gitml.gitops.retrain import RetrainError, retrain_pr
from gitml.testing.forge_stub import ForgeStub
from tests.conftest import copy_project, git, run
from tests.projects import publish_copy

pytestmark = pytest.mark.slow
BRANCH = "gitml/retrain/model"
T0 = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)


def origin_project(fresh: Path, tmp: Path, dvc_remote: bool = True) -> Path:
    """A copy of the fresh template ``fresh`` pushed to ``tmp/origin.git``, with a DVC remote beside it."""
    git("init", "-q", "--bare", "-b", "main", str(tmp / "origin.git"), cwd=tmp)
    project = copy_project(fresh, tmp / "project")
    git("remote", "add", "origin", str(tmp / "origin.git"), cwd=project)
    if dvc_remote:
        run("dvc", "remote", "add", "-d", "storage", str(tmp / "dvc-remote"), cwd=project)
        git("commit", "-q", "-am", "dvc remote", cwd=project)
    git("push", "-q", "origin", "main", cwd=project)
    return project


@pytest.fixture(scope="module")
def published(reproduced_template, tmp_path_factory) -> Path:
    """A trained project whose first pipeline run (data, lock, bundle) is pushed.

    Its DVC remote is named by absolute path: retrain_pr pushes from a git worktree
    outside the project, where a relative one would point elsewhere.
    """
    world = tmp_path_factory.mktemp("retrain")
    return publish_copy(reproduced_template, world, dvc_remote=str(world / "dvc-remote"))


def make_batch(project: Path, seed: int, rows: int = 40) -> pd.DataFrame:
    """Labelled production rows: raw rows, jittered a little so they are new rows."""
    raw = pd.read_parquet(project / "data/raw/data.parquet")
    batch = raw.sample(rows, random_state=seed).reset_index(drop=True)
    features = [c for c in batch.columns if c != "target"]
    batch[features] = batch[features].mul(1 + 0.01 * (np.arange(rows) % 3 - 1), axis=0)
    return batch


def drift_report(folder: Path, drift: bool = True, note: str = "mean_radius shifted") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "drift.json").write_text(json.dumps({"drift": drift, "p_val": 0.05}))
    (folder / "drift.md").write_text(f"## Drift report\n\n| feature | p-value |\n|---|---|\n| {note} | 0.001 |\n")
    (folder / "mean_radius.png").write_bytes(b"\x89PNG fake plot " + note.encode())
    return folder


def checkout_state(project: Path) -> tuple[str, str, str]:
    return (git("rev-parse", "--abbrev-ref", "HEAD", cwd=project).stdout.strip(),
            git("rev-parse", "HEAD", cwd=project).stdout.strip(),
            git("status", "--porcelain", cwd=project).stdout)


def remote_files(project: Path) -> set[str]:
    git("fetch", "-q", "origin", cwd=project)
    out = git("diff", "--name-only", "origin/main", f"origin/{BRANCH}", cwd=project).stdout
    return set(out.split())


def test_retrain_pr_opens_then_updates_one_pull_request_and_the_merge_retrains(published, tmp_path, forge_token, caplog):
    project = published
    caplog.set_level(logging.DEBUG)
    before = checkout_state(project)
    prepared_before = json.loads((project / "models/bundle/metadata.json").read_text())["provenance"]["prepared_md5"]
    report = drift_report(tmp_path / "drift")
    origin = project.parent / "origin.git"
    with ForgeStub(token=forge_token, page_size=2, git_dir=origin) as stub, \
            GitHubForge("acme/app", forge_token, stub.url, sleep=lambda s: None) as forge:
        first = retrain_pr(project, forge, model_name="model", batch=make_batch(project, 1),
                           drift_detected=True, report_dir=report, now=T0, target="target")
        assert first.action == "opened" and first.branch == BRANCH and first.pull is not None
        assert first.batch_file and first.batch_file.startswith("20261129T100000Z-")
        assert checkout_state(project) == before
        assert git("worktree", "list", cwd=project).stdout.count("\n") == 1
        assert remote_files(project) == {
            f"data/production/{first.batch_file}.dvc", "data/production/.gitignore",
            "reports/drift/drift.json", "reports/drift/drift.md", "reports/drift/mean_radius.png",
        }
        (pull,) = stub.open_pulls()
        assert pull["title"] == "Retrain model: drift detected in production"
        assert pull["labels"] == [{"name": "retrain"}] and pull["base"]["ref"] == "main"
        assert "mean_radius shifted" in pull["body"] and first.batch_file in pull["body"]
        assert "40 rows; classes (target):" in pull["body"]

        # A fresh clone of the branch pulls exactly this batch from the DVC remote.
        clone = tmp_path / "clone"
        git("clone", "-q", "-b", BRANCH, str(origin), str(clone), cwd=tmp_path)
        run("dvc", "pull", "-q", f"data/production/{first.batch_file}.dvc", cwd=clone)
        pulled = pd.read_parquet(clone / "data/production" / first.batch_file)
        pd.testing.assert_frame_equal(pulled, make_batch(project, 1))
        assert first.batch_file in (clone / "data/production/.gitignore").read_text()

        later = [retrain_pr(project, forge, model_name="model", batch=make_batch(project, seed),
                            drift_detected=True, report_dir=drift_report(report, note=f"run {seed}"),
                            now=T0 + timedelta(hours=seed), target="target") for seed in (2, 3)]
        assert [r.action for r in later] == ["updated", "updated"]
        assert {r.pull.number for r in later} == {first.pull.number} and len(stub.pulls) == 1
        comments = stub.comments_on(first.pull.number)
        assert len(comments) == 2 and all("Added production batch" in c["body"] for c in comments)
        assert later[1].batch_file in comments[1]["body"]
        body = stub.pulls[first.pull.number]["body"]
        assert "run 3" in body and all(r.batch_file in body for r in [first, *later])
        changed = remote_files(project)
        assert sorted(f for f in changed if f.endswith(".parquet.dvc")) == sorted(
            f"data/production/{r.batch_file}.dvc" for r in [first, *later])
        assert checkout_state(project) == before

        again = retrain_pr(project, forge, model_name="model", batch=make_batch(project, 3),
                           drift_detected=True, report_dir=report, target="target")
        assert again.action == "nothing" and "already" in again.reason and again.batch_file == later[1].batch_file
        calls = len(stub.exchanges)
        calm = retrain_pr(project, forge, model_name="model", batch=make_batch(project, 4),
                          drift_detected=False, report_dir=report)
        assert calm.action == "nothing" and calm.pull is None and len(stub.exchanges) == calls
        assert retrain_pr(project, forge, model_name="model", batch=make_batch(project, 4).head(0),
                          drift_detected=True, report_dir=report).action == "nothing"
        assert len(stub.pulls) == 1 and len(stub.comments_on(first.pull.number)) == 2

        # `gitml comment`: sticky, and a wrong token is one clean line without the token.
        body_file = tmp_path / "ci.md"
        body_file.write_text("| metric | main | PR |\n")
        env = {"GITML_TOKEN": forge_token, "GITML_FORGE_URL": stub.url, "GITHUB_REPOSITORY": "acme/app"}
        outs = [run("gitml", "-v", "comment", "--pr", str(first.pull.number), "--body-file", body_file,
                    cwd=project, env=env) for _ in range(2)]
        assert outs[0].stdout.split()[1] == outs[1].stdout.split()[1]
        assert len(stub.comments_on(first.pull.number)) == 3
        bad = run("gitml", "comment", "--pr", "1", "--body-file", body_file, cwd=project, check=False,
                  env={**env, "GITML_TOKEN": forge_token + "x"})
        assert bad.returncode == 1 and "401" in bad.stderr and "Traceback" not in bad.stderr
        cli_output = "".join(o.stdout + o.stderr for o in [*outs, bad])
        for text in (caplog.text, stub.traffic(), cli_output, body):
            assert forge_token not in text

    # Merging the branch retrains on the enlarged snapshot.
    main = tmp_path / "main"
    git("clone", "-q", str(origin), str(main), cwd=tmp_path)
    git("merge", "-q", "--no-edit", f"origin/{BRANCH}", cwd=main)
    run("dvc", "pull", "-q", cwd=main)
    # Up to package, whose bundle records the data it was trained on (the gate after it is
    # the registry tests' subject).
    assert "Running stage 'train'" in run("dvc", "repro", "package", cwd=main).stdout
    rows = json.loads((main / "reports/data.json").read_text())["rows"]
    assert rows["production"] == 120 and rows["total"] == rows["raw"] + 120
    prepared_after = json.loads((main / "models/bundle/metadata.json").read_text())["provenance"]["prepared_md5"]
    assert prepared_after and prepared_after != prepared_before


def test_retrain_pr_cli_reads_the_verdict_and_the_labelled_logs(published, tmp_path, forge_token):
    pytest.importorskip("gitml.monitor.logs")
    work = tmp_path / "work"
    git("clone", "-q", str(published.parent / "origin.git"), str(work), cwd=tmp_path)
    run("dvc", "pull", "-q", "models/bundle", cwd=work)
    features = [c["name"] for c in json.loads((work / "models/bundle/signature.json").read_text())["inputs"]]
    rows = make_batch(published, 7, rows=30)
    now = pd.Timestamp.now(tz="UTC").floor("us")
    requests = rows[features].assign(request_id=[f"r{i // 10}" for i in range(30)], row=[i % 10 for i in range(30)],
                                     ts=now, model_version="v1", prediction="1", proba_0=0.5, proba_1=0.5)
    feedback = pd.DataFrame({"request_id": requests["request_id"], "row": requests["row"],
                             "label": rows["target"].astype(str), "ts": now})
    hour = f"date={now:%Y-%m-%d}/hour={now:%H}"
    for kind, frame in (("requests", requests), ("feedback", feedback)):
        (tmp_path / "logs" / kind / hour).mkdir(parents=True)
        frame.to_parquet(tmp_path / "logs" / kind / hour / "part-1-1-0.parquet", index=False)
    env = {"GITML_TOKEN": forge_token, "GITHUB_REPOSITORY": "acme/app"}
    args = ["gitml", "-v", "retrain-pr", "--log-dir", tmp_path / "logs"]

    calm = drift_report(tmp_path / "calm", drift=False)
    out = run(*args, "--report-dir", calm, cwd=work, env={"GITHUB_REPOSITORY": "acme/app"})  # no token needed
    assert "nothing to do: no drift" in out.stdout
    (calm / "drift.json").write_text(json.dumps({"verdict": "no drift"}))
    assert "nothing to do" in run(*args, "--report-dir", calm, cwd=work).stdout

    report = drift_report(tmp_path / "drift")
    (report / "drift.json").write_text(json.dumps({"is_drift": True}))
    with ForgeStub(token=forge_token, page_size=2) as stub:
        out = run(*args, "--report-dir", report, cwd=work, env={**env, "GITML_FORGE_URL": stub.url})
        assert out.stdout.startswith("opened pull request #1 from gitml/retrain/model"), out.stdout
        (pull,) = stub.open_pulls()
        assert "30 rows; classes (target):" in pull["body"]
        assert forge_token not in out.stdout + out.stderr + stub.traffic()
    assert git("status", "--porcelain", cwd=work).stdout == ""
    git("fetch", "-q", "origin", cwd=work)
    name = next(f for f in remote_files(work) if f.endswith(".parquet.dvc"))
    clone = tmp_path / "clone"
    git("clone", "-q", "-b", BRANCH, str(published.parent / "origin.git"), str(clone), cwd=tmp_path)
    run("dvc", "pull", "-q", name, cwd=clone)
    batch = pd.read_parquet(clone / name.removesuffix(".dvc"))
    assert list(batch.columns) == [*features, "target"] and batch["target"].dtype == "int64"
    assert len(batch) == 30


def test_a_failure_leaves_the_callers_checkout_as_it_was_and_pushes_nothing(fresh_template, tmp_path, forge_token):
    project = origin_project(fresh_template, tmp_path, dvc_remote=False)
    git("checkout", "-q", "-b", "work", cwd=project)
    readme = project / "data/production/README.md"
    readme.write_text(readme.read_text() + "\nlocal edit\n")
    before = checkout_state(project)
    batch = pd.DataFrame({"x": [1.0, 2.0], "target": [0, 1]})
    report = drift_report(tmp_path / "drift")
    with ForgeStub(token=forge_token) as stub:
        with GitHubForge("acme/app", forge_token + "wrong", stub.url) as forge, pytest.raises(ForgeError) as info:
            retrain_pr(project, forge, model_name="model", batch=batch, drift_detected=True, report_dir=report)
        assert "401" in str(info.value) and forge_token not in str(info.value)
        with GitHubForge("acme/app", forge_token, stub.url) as forge, pytest.raises(RetrainError) as info:
            retrain_pr(project, forge, model_name="model", batch=batch, drift_detected=True, report_dir=report)
        assert "dvc push" in str(info.value) and "dvc remote add" in str(info.value)
        assert stub.pulls == {}
    assert checkout_state(project) == before
    assert git("worktree", "list", cwd=project).stdout.count("\n") == 1
    assert git("ls-remote", "--heads", "origin", cwd=project).stdout.count("refs/heads/") == 1
    with pytest.raises(RetrainError, match="branch name"):
        retrain_pr(project, None, model_name="bad name..", batch=batch, drift_detected=True,  # type: ignore[arg-type]
                   report_dir=report)


def test_retrain_pr_refuses_when_the_base_is_missing(fresh_template, tmp_path, forge_token):
    project = origin_project(fresh_template, tmp_path)
    with ForgeStub(token=forge_token) as stub, GitHubForge("acme/app", forge_token, stub.url) as forge, \
            pytest.raises(RetrainError, match="Base branch 'release' not found on remote 'origin'"):
        retrain_pr(project, forge, model_name="model", batch=pd.DataFrame({"x": [1]}), drift_detected=True,
                   report_dir=tmp_path, base="release")
    assert git("status", "--porcelain", cwd=project).stdout == ""


def test_after_the_pull_request_is_closed_a_fresh_branch_replaces_the_stale_one(fresh_template, tmp_path, forge_token):
    project = origin_project(fresh_template, tmp_path)
    report = drift_report(tmp_path / "drift")
    batches = [pd.DataFrame({"x": [float(i), 2.0], "target": [0, 1]}) for i in range(2)]
    with ForgeStub(token=forge_token, git_dir=tmp_path / "origin.git") as stub, \
            GitHubForge("acme/app", forge_token, stub.url) as forge:
        first = retrain_pr(project, forge, model_name="model", batch=batches[0], drift_detected=True,
                           report_dir=report, now=T0)
        stub.pulls[first.pull.number]["state"] = "closed"  # rejected by a reviewer
        second = retrain_pr(project, forge, model_name="model", batch=batches[1], drift_detected=True,
                            report_dir=tmp_path / "no-report", now=T0)  # a report is optional
        assert (first.action, second.action) == ("opened", "opened") and second.pull.number != first.pull.number
        (pull,) = stub.open_pulls()
        assert "2 rows; classes (target): 0: 1, 1: 1" in pull["body"] and "No drift.md" in pull["body"]
    # the rejected batch and report are gone: the branch restarted from main
    assert remote_files(project) == {f"data/production/{second.batch_file}.dvc", "data/production/.gitignore"}
    assert git("status", "--porcelain", cwd=project).stdout == ""
