"""Training and evaluation under real DVC: experiments, metrics, plots, reruns, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPRO_LOG, TINY_OVERRIDES, copy_project, run
from tests.integration.test_data_pipeline import repro

pytestmark = pytest.mark.slow


def stages_run(output: str) -> set[str]:
    names = ("ingest", "validate", "prepare", "train", "evaluate")
    return {s for s in names if f"Running stage '{s}'" in output}


@pytest.fixture
def trained(reproduced_template) -> tuple[Path, str]:
    """A project after its first `dvc repro` with TINY_OVERRIDES, committed, and that run's output.

    The session's template (built once per run): the tests work on a copy of it.
    """
    return reproduced_template, (reproduced_template.parent / REPRO_LOG).read_text()


def test_repro_trains_evaluates_and_dvc_reads_metrics_and_plots(trained, tmp_path, gitml_main):
    template, out = trained
    project = copy_project(template, tmp_path / "project")
    assert stages_run(out) == {"ingest", "validate", "prepare", "train", "evaluate"}
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.85 and metrics["test"]["roc_auc"] > 0.9
    assert {"balanced_accuracy", "f1_macro", "pr_auc", "log_loss", "brier", "per_class"} <= set(metrics["test"])
    assert set(metrics["slices"]["mean_radius"]) == {"[0, 12)", "[12, 15)", "[15, 100)"}
    assert not list((project / "models/model").glob("*.pkl"))

    shown = run("dvc", "metrics", "show", "--md", cwd=project).stdout
    assert "test.accuracy" in shown and "reports/metrics.json" in shown
    html = tmp_path / "plots"
    run("dvc", "plots", "show", "-o", str(html), cwd=project)
    page = (html / "index.html").read_text()
    for title in ("Training curves", "Confusion matrix", "ROC", "Precision-recall", "Calibration"):
        assert title in page

    # trainer.* reruns train and evaluate only; data.slices reruns evaluate only. `dvc repro
    # evaluate` decides exactly that for every stage up to evaluate; package and gate, after
    # it, would only add two stage runs here (the registry tests run them).
    gitml_main("config", "compose", *TINY_OVERRIDES, "trainer.epochs=4", cwd=project)
    assert stages_run(repro(project, "evaluate").stdout) == {"train", "evaluate"}
    gitml_main("config", "compose", *TINY_OVERRIDES, "trainer.epochs=4", "data.slices=[]", cwd=project)
    assert stages_run(repro(project, "evaluate").stdout) == {"evaluate"}
    assert stages_run(repro(project, "evaluate").stdout) == set()


def test_experiments_with_both_families_compare_in_exp_show(trained, tmp_path):
    project = copy_project(trained[0], tmp_path / "project")
    tiny = [arg for override in TINY_OVERRIDES for arg in ("-S", override)]  # composed from conf/ afresh
    # Up to evaluate, which writes the metrics compared; 20 trees instead of 200 make it a forest all the same.
    run("dvc", "exp", "run", "-n", "forest", *tiny, "-S", "model=random_forest", "-S", "model.estimator.n_estimators=20",
        "evaluate", cwd=project)
    run("dvc", "exp", "run", "-n", "mlp5", *tiny, "-S", "model=mlp", "-S", "trainer.epochs=5", "evaluate", cwd=project)
    table = run("dvc", "exp", "show", "--md", "--no-pager", cwd=project).stdout
    assert "forest" in table and "mlp5" in table
    assert "test.accuracy" in table
    assert "model.family" in table or "sklearn" in table


def test_same_seed_twice_gives_identical_metrics(trained, tmp_path):
    project = copy_project(trained[0], tmp_path / "project")
    first = (project / "reports/metrics.json").read_text()
    # Retrain and re-evaluate only (-s): the data stages' own determinism is
    # test_data_pipeline's (a fresh clone prepares byte-identical data).
    out = run("dvc", "repro", "-f", "-s", "train", "evaluate", cwd=project)
    assert stages_run(out.stdout) == {"train", "evaluate"}
    assert (project / "reports/metrics.json").read_text() == first


def test_killed_training_resumes_from_last_checkpoint_and_leaves_no_partial_model(project, gitml_main):
    # Epochs long enough (200 steps) for the poll below to catch epoch 2, few enough that
    # the resumed run's last ones are cheap.
    params = ["data=synthetic", "data.source.synthetic.n_rows=5000", *TINY_OVERRIDES,
              "trainer.epochs=6", "trainer.batch_size=16", "trainer.early_stopping.enabled=false"]
    gitml_main("config", "compose", *params, cwd=project)
    run("dvc", "repro", "prepare", cwd=project)
    command = ["gitml", "train", "--out", "models/model", "--checkpoints", "models/checkpoints",
               "--curves", "reports/plots/training.csv", "--summary", "reports/train.json"]
    state = project / "models/checkpoints/state.json"
    proc = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if state.is_file() and json.loads(state.read_text())["train"]["epoch"] >= 2:
            break
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = json.loads(state.read_text())["train"]["epoch"]
    assert 2 <= done < 6
    assert not (project / "models/model").exists()

    out = run(*command, cwd=project)
    assert f"resuming from checkpoint after epoch {done} of 6" in out.stderr
    summary = json.loads((project / "reports/train.json").read_text())["train"]
    assert summary["resumed_from_epoch"] == done and summary["epochs"] == 6
    curves = pd.read_csv(project / "reports/plots/training.csv")
    assert list(curves["epoch"]) == list(range(1, 7))
    assert (project / "models/model/model.safetensors").is_file()
