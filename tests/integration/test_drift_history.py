"""Drift history (monitor/history.py): three checks append three rows, and the real `dvc plots show`
draws them from dvc.yaml's top-level plots (:func:`history_plots`); the PR report shows the trend."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from gitml.ci.report import drift_trend
from gitml.config.schema import DriftConfig
from gitml.monitor.check import drift_check
from gitml.monitor.history import history_plots
from gitml.package.bundle import load_bundle
from tests.conftest import run
from tests.drift_helpers import START, make_bundle, synthetic_pool, write_feedback, write_requests


def test_three_checks_make_a_three_point_trend_that_dvc_plots_draws(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    run("git", "init", "-q", cwd=repo)
    run("dvc", "init", "-q", cwd=repo)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": history_plots("reports/drift")}, sort_keys=False))
    pool, moved = synthetic_pool(3200), synthetic_pool(3200, shift=0.6, shift_features=2)
    bundle = load_bundle(make_bundle(tmp_path / "bundle", pool.iloc[:2000]))
    features = bundle.signature.features
    # three hours of traffic, 400 rows each: as drawn, then num_0 and num_1 moved (P(label | inputs) kept for
    # the rest); labels for the first hour only
    hours = [pool.iloc[2000:2400], moved.iloc[2400:2800], moved.iloc[2800:3200]]
    cfg = DriftConfig(window_rows=None, window_hours=1.0, min_rows=200)
    verdicts = []
    for hour, frame in enumerate(hours):  # each hour's traffic logged, then that hour checked
        logged = write_requests(tmp_path / "logs", frame[features], bundle.predict(frame[features]),
                                model_version=bundle.version, start=START + pd.Timedelta(hours=hour),
                                every_seconds=5, prefix=f"h{hour}")
        if hour == 0:
            write_feedback(tmp_path / "logs", logged, frame["target"])
        report = drift_check(bundle.path, tmp_path / "logs", cfg, repo / "reports/drift",
                             now=START + pd.Timedelta(hours=hour + 1))
        verdicts.append(report.verdict)

    assert verdicts == ["no drift", "drift", "drift"]
    history = pd.read_csv(repo / "reports/drift/history.csv")
    assert history["run"].tolist() == [1, 2, 3] and history["rows"].tolist() == [400, 400, 400]
    assert history["realised"].notna().tolist() == [True, False, False]  # labels arrived for the first hour only
    assert history["estimated"].notna().all() and history["share_drifted"].iloc[2] > history["share_drifted"].iloc[0]

    shown = json.loads(run("dvc", "plots", "show", "--json", cwd=repo).stdout)
    assert not shown.get("errors"), shown["errors"]
    data = {name: plots[0]["content"]["data"]["values"] for name, plots in shown["data"].items()}
    trend = data["Drift history: reports/drift"]
    assert sorted({int(v["run"]) for v in trend}) == [1, 2, 3]
    assert {v["field"] for v in trend} == {"share_drifted", "estimated", "realised"}
    p_values = data["Feature p-values: reports/drift"]
    assert {v["feature"] for v in p_values} == set(features) and len(p_values) == 3 * len(features)

    table = drift_trend(repo / "reports/drift")
    assert table is not None and [line.split(" | ")[0] for line in table.splitlines()[2:]] == ["| 1", "| 2", "| 3"]
