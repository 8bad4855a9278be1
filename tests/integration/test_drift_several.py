"""`gitml drift run` over a repository of three models: one retraining pull request per drifting model.

The repository is `gitml init --models` (two classifiers and a regression) with a bare origin
and a DVC remote; the bundles are real, built in a second each (tests/drift_helpers.py); the
logs are written by the real server serving the three together (LOG_DIR/NAME/), requests and
feedback through its HTTP app; GitHub is the forge stand-in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gitml import api
from gitml.testing.forge_stub import ForgeStub
from tests.conftest import git, run
from tests.drift_helpers import make_bundle, make_regression_bundle, regression_pool, synthetic_pool

pytestmark = pytest.mark.slow
MODELS = ("churn:breast_cancer:logreg", "quality:wine:hgb", "price:diabetes:ridge")
BATCH_ROWS = 50


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """The project (pushed to origin.git, DVC remote beside it), each model's bundle and traffic pools."""
    root = tmp_path_factory.mktemp("drift-several")
    project = api.init(root / "project", models=MODELS).project
    git("init", "-q", "--bare", "-b", "main", str(root / "origin.git"), cwd=root)
    git("remote", "add", "origin", str(root / "origin.git"), cwd=project)
    run("dvc", "remote", "add", "-d", "storage", str(root / "dvc-remote"), cwd=project)  # absolute: see retrain_pr
    git("commit", "-q", "-am", "dvc remote", cwd=project)
    git("push", "-q", "origin", "main", cwd=project)
    churn, quality = synthetic_pool(2400, seed=0), synthetic_pool(2400, seed=3)
    price = regression_pool(2400, seed=0)
    bundles = {
        "churn": make_bundle(root / "bundles/churn", churn.iloc[:1200]),
        "quality": make_bundle(root / "bundles/quality", quality.iloc[:1200]),
        "price": make_regression_bundle(root / "bundles/price", price.iloc[:1200], price.iloc[1200:1600]),
    }
    # Production traffic: rows the bundles never saw; price's moved by one standard deviation of x0.
    traffic = {"churn": churn.iloc[1200:], "quality": quality.iloc[1200:],
               "price": regression_pool(2400, shift=1.0, seed=0).iloc[1200:],
               "churn_shifted": synthetic_pool(2400, shift=1.0, seed=0).iloc[1200:]}
    return {"project": project, "bundles": bundles, "traffic": traffic, "origin": root / "origin.git"}


def serve_traffic(world: dict, rows: dict[str, slice]) -> None:
    """``rows`` of each model's traffic through one server of the three models, then their labels."""
    from fastapi.testclient import TestClient

    from gitml.config.schema import ServeConfig
    from gitml.serve.app import create_app
    from gitml.serve.state import ServeSettings, ServeState

    models = [[name, "bundle", str(path)] for name, path in world["bundles"].items()]
    settings = ServeSettings(models=models, cfg=ServeConfig(log_dir=str(world["project"] / "logs")))
    with TestClient(create_app(ServeState(settings))) as client:
        for pool, span in rows.items():
            name, frame = pool.removesuffix("_shifted"), world["traffic"][pool].iloc[span]
            label = "y" if name == "price" else "target"
            header = {"x-gitml-model": name}
            for first in range(0, len(frame), BATCH_ROWS):
                batch = frame.iloc[first:first + BATCH_ROWS]
                records = json.loads(batch.drop(columns=[label]).to_json(orient="records"))
                answer = client.post("/invocations", json={"dataframe_records": records}, headers=header)
                assert answer.status_code == 200, answer.text
                labels = json.loads(batch[label].to_json(orient="values"))
                feedback = {"request_id": answer.headers["x-request-id"], "labels": labels}
                assert client.post("/feedback", json=feedback, headers=header).status_code == 200


def drift_run(gitml_main, world: dict, stub: ForgeStub, *args: str):
    return gitml_main("drift", "run", *(f"--bundle={n}={p}" for n, p in world["bundles"].items()),
                      "--repo-slug", "acme/app", "--forge-url", stub.url, *args, cwd=world["project"], check=False)


def test_one_drift_run_over_three_models_opens_one_pull_request_for_the_shifted_one(
        world, gitml_main, forge_token, monkeypatch):
    project = world["project"]
    monkeypatch.setenv("GITML_TOKEN", forge_token)
    serve_traffic(world, {name: slice(0, 600) for name in world["bundles"]})
    assert sorted(p.name for p in (project / "logs").iterdir()) == ["churn", "price", "quality"]

    with ForgeStub(token=forge_token, git_dir=world["origin"]) as stub:
        first = drift_run(gitml_main, world, stub)
        assert first.returncode == 0, first.stdout + first.stderr
        lines = dict(line.split(": ", 1) for line in first.stdout.splitlines()[:3])
        assert lines["churn"].startswith("no drift; 600 rows of logs/churn"), first.stdout
        assert lines["quality"].startswith("no drift; 600 rows of logs/quality"), first.stdout
        assert lines["price"].startswith("drift; ") and "opened pull request #1 from gitml/retrain/price" in lines["price"]
        assert "3 model(s), 1 drifting, 0 failed" in first.stdout

        (pull,) = stub.open_pulls()
        assert pull["title"] == "Retrain price: drift detected in production"
        assert pull["head"]["ref"] == "gitml/retrain/price" and "- model: `price`" in pull["body"]
        assert "`data/price/production/" in pull["body"] and "600 rows; labels (target)" in pull["body"], pull["body"]
        changed = branch_files(project, "gitml/retrain/price")
        batches = [f for f in changed if f.endswith(".parquet.dvc")]
        assert len(batches) == 1 and batches[0].startswith("data/price/production/")
        assert {"reports/price/drift/drift.json", "reports/price/drift/drift.md"} <= set(changed)
        assert not [f for f in changed if "churn" in f or "quality" in f]
        for name, verdict in (("churn", "no drift"), ("quality", "no drift"), ("price", "drift")):
            assert json.loads((project / f"reports/{name}/drift/drift.json").read_text())["verdict"] == verdict

        # The same window again: nothing new to add, the one pull request stays as it is.
        again = drift_run(gitml_main, world, stub)
        assert again.returncode == 0 and "nothing to do: this batch is already in data/price/production" in again.stdout
        assert len(stub.pulls) == 1 and stub.comments_on(1) == []

        # The same by hand, one model: its logs (logs/price), settings, report and branch by default.
        price = str(world["bundles"]["price"])
        check = gitml_main("drift", "check", "--model", "price", "--bundle", price, cwd=project, check=False)
        assert check.returncode == 1 and "report in reports/price/drift/" in check.stdout, check.stdout
        pr = gitml_main("retrain-pr", "--model", "price", "--bundle", price, "--repo-slug", "acme/app",
                        "--forge-url", stub.url, cwd=project)
        assert "nothing to do: this batch is already in data/price/production on origin/gitml/retrain/price" \
            in pr.stdout, pr.stdout

        # More traffic: price's pull request is updated; churn's now shifted too, so it gets a pull
        # request of its own; quality's logs are gone, and it fails alone.
        serve_traffic(world, {"price": slice(600, 900), "churn_shifted": slice(600, 900)})
        shutil.rmtree(project / "logs/quality")
        third = drift_run(gitml_main, world, stub)
        assert third.returncode == 1, third.stdout + third.stderr
        assert "updated pull request #1 from gitml/retrain/price" in third.stdout
        assert "opened pull request #2 from gitml/retrain/churn" in third.stdout
        assert "quality: failed; No request log under 'logs/quality/requests'" in third.stdout, third.stdout
        assert "3 model(s), 2 drifting, 1 failed: quality" in third.stderr
        assert {p["head"]["ref"]: p["title"] for p in stub.open_pulls()} == {
            "gitml/retrain/price": "Retrain price: drift detected in production",
            "gitml/retrain/churn": "Retrain churn: drift detected in production"}
        assert len(stub.comments_on(1)) == 1 and stub.comments_on(2) == []
        price_files, churn_files = (branch_files(project, f"gitml/retrain/{n}") for n in ("price", "churn"))
        assert len([f for f in price_files if f.endswith(".parquet.dvc")]) == 2
        assert all("/price/" in f for f in price_files) and all("/churn/" in f for f in churn_files)
        assert forge_token not in stub.traffic() + third.stdout + third.stderr
    assert git("status", "--porcelain", "--untracked-files=no", cwd=project).stdout == ""  # the checkout is as it was
    heads = git("ls-remote", "--heads", "origin", cwd=project).stdout
    assert sorted(line.split("refs/heads/")[1] for line in heads.splitlines()) == [
        "gitml/retrain/churn", "gitml/retrain/price", "main"]


def branch_files(project: Path, branch: str) -> list[str]:
    git("fetch", "-q", "origin", cwd=project)
    return git("diff", "--name-only", "origin/main", f"origin/{branch}", cwd=project).stdout.split()


def test_the_registry_run_skips_models_without_the_stage_and_goes_on_past_one_it_cannot_fetch(
        world, gitml_main, tmp_path):
    project = tmp_path / "clone"
    git("clone", "-q", str(world["origin"]), str(project), cwd=tmp_path)
    git("init", "-q", "--bare", "-b", "main", str(tmp_path / "origin.git"), cwd=tmp_path)  # its own registry
    git("remote", "set-url", "origin", str(tmp_path / "origin.git"), cwd=project)
    head = git("rev-parse", "HEAD", cwd=project).stdout.strip()
    # price v1.0.0 in prod, on a commit whose bundle was never built or pushed
    git("tag", "-a", "price@v1.0.0", "-m", "Registering artifact price version v1.0.0", head, cwd=project)
    git("tag", "-a", "price#prod#1", "-m", "Assigning stage prod to artifact price version v1.0.0", head, cwd=project)
    git("push", "-q", "origin", "main", "--tags", cwd=project)
    out = gitml_main("drift", "run", "--stage", "prod", cwd=project, check=False)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "churn: skipped; no version in stage 'prod'"
    assert lines[1].startswith("price: failed; ") and "models/price/bundle" in lines[1], out.stdout
    assert lines[2] == "quality: skipped; no version in stage 'prod'"  # after price failed: the run went on
    assert "3 model(s), 0 drifting, 1 failed: price" in out.stderr and "Traceback" not in out.stderr
    only = gitml_main("drift", "run", "--model", "churn", cwd=project, check=False)
    assert only.returncode == 0 and only.stdout.splitlines()[0] == "churn: skipped; no version in stage 'prod'"
    wrong = gitml_main("drift", "run", "--model", "nope", cwd=project, check=False)
    assert wrong.returncode != 0 and "Allowed: churn, price, quality" in wrong.stderr
