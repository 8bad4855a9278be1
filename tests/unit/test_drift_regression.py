"""``gitml drift check`` on a regression bundle: the predicted number tested for drift (KS on
``prediction``), and RMSE, MAE and R^2 of labelled traffic against the bundle's test metrics.

Logs are written by the server's own writers (serve/requestlog.py through ``ServedModel``),
labels as the float64 numbers the feedback route records for a regression model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from gitml.config.schema import DriftConfig
from gitml.monitor.check import drift_check
from gitml.monitor.logs import labelled, read_feedback, read_requests
from gitml.package.bundle import load_bundle
from tests.drift_helpers import make_regression_bundle, regression_pool, serve_feedback, serve_log

CFG = DriftConfig(min_rows=100)
GATE = {"thresholds": [{"metric": "rmse", "min": None, "max": 1.5, "slice": None, "split": "test"}],
        "baseline": {"metric": "auto"}}
OFFSET = 2.0  # labelled rows: the label is the logged prediction -/+ OFFSET, alternately


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A Ridge bundle on 1200 rows (test metrics from 300 more); logs of 600 later rows, as drawn
    and with x0 moved by one standard deviation; the first 200 rows of each labelled."""
    root = tmp_path_factory.mktemp("drift-regression")
    pool, moved = regression_pool(2100, seed=3), regression_pool(2100, shift=1.0, seed=3)
    bundle_dir = make_regression_bundle(root / "bundle", pool.iloc[:1200], pool.iloc[1200:1500], gate=GATE)
    bundle = load_bundle(bundle_dir)
    logs = {}
    for name, frame in (("same", pool.iloc[1500:]), ("moved", moved.iloc[1500:])):
        serve_log(root / name, bundle, frame)
        logged = read_requests(root / name).iloc[:200]
        signs = np.where(np.arange(len(logged)) % 2 == 0, -1.0, 1.0)
        serve_feedback(root / name, bundle, logged, logged["prediction"].to_numpy() + signs * OFFSET)
        logs[name] = root / name
    return root, bundle_dir, logs


def test_the_logs_are_what_a_regression_server_writes(setup):
    _, bundle_dir, logs = setup
    window, labels = read_requests(logs["same"]), read_feedback(logs["same"])
    assert window["prediction"].dtype == "float64" and not any(c.startswith("proba_") for c in window.columns)
    assert len(window) == 600 and len(labels) == 200
    bundle = load_bundle(bundle_dir)
    assert window["prediction"].to_numpy() == pytest.approx(bundle.model_output(window[bundle.signature.features]))


def test_undrifted_traffic_is_no_drift_and_the_report_compares_the_predicted_numbers(setup):
    root, bundle, logs = setup
    report = drift_check(bundle, logs["same"], CFG, root / "out-same", root / "cache")
    assert (report.verdict, report.exit_code, report.reasons) == ("no drift", 0, [])
    data = json.loads((root / "out-same/drift.json").read_text())
    assert data["bundle"]["task"] == "regression"
    predictions = data["predictions"]
    assert [f["name"] for f in predictions["features"]] == ["prediction"] and not predictions["is_drift"]
    assert predictions["n_reference"] == 800 and predictions["n_current"] == 600
    reference = load_bundle(bundle).reference_predictions()["prediction"]
    summary = predictions["summary"]["prediction"]
    assert summary["reference"]["mean"] == pytest.approx(reference.mean())
    assert summary["current"]["n"] == 600
    markdown = (root / "out-same/drift.md").read_text()
    assert "(version v1, task regression) |" in markdown
    assert "## Predicted values" in markdown and "| `prediction` | ks |" in markdown
    assert f"| `prediction` | reference 800 | {reference.mean():.4g} |" in markdown


def test_shifted_features_and_predictions_are_drift_naming_both(setup):
    root, bundle, logs = setup
    report = drift_check(bundle, logs["moved"], CFG, root / "out-moved", root / "cache-moved")
    assert report.verdict == "drift" and report.exit_code == 1
    assert report.features.drifted_features == ["x0"]
    assert report.predictions.is_drift and report.predictions.drifted_features == ["prediction"]
    means = report.predictions.summary["prediction"]
    assert means["current"]["mean"] - means["reference"]["mean"] == pytest.approx(10.0, abs=2.0)  # 10 * 1 sd
    assert report.reasons[1].startswith("predictions: 1 of 1 drifted (prediction); prediction mean ")
    assert report.cache == {"tabular": "saved", "predictions": "saved"}
    again = drift_check(bundle, logs["moved"], CFG, root / "out-moved", root / "cache-moved")  # from the cache
    assert again.cache == {"tabular": "loaded", "predictions": "loaded"}
    assert again.predictions.to_dict() == report.predictions.to_dict()


def test_labelled_rows_give_rmse_mae_and_r2_and_the_decay_of_rmse(setup):
    root, bundle, logs = setup
    report = drift_check(bundle, logs["same"], CFG, root / "out-labels")
    metrics = report.metrics
    labels = read_feedback(logs["same"])["label"].astype(float).to_numpy()
    r2 = 1 - len(labels) * OFFSET**2 / np.sum((labels - labels.mean()) ** 2)
    assert metrics["task"] == "regression" and metrics["n_labelled"] == 200
    assert list(metrics["metrics"]) == ["rmse", "mae", "r2"]
    current = {m: v["current"] for m, v in metrics["metrics"].items()}
    assert current == pytest.approx({"rmse": OFFSET, "mae": OFFSET, "r2": r2}, rel=1e-9)
    test = load_bundle(bundle).metadata["metrics"]["test"]
    assert metrics["metrics"]["rmse"]["reference"] == test["rmse"]
    assert metrics["metrics"]["rmse"]["change"] == pytest.approx(OFFSET - test["rmse"])
    assert metrics["metrics"]["rmse"]["gated"] and not metrics["metrics"]["mae"]["gated"]
    decay = metrics["decay"]
    assert (decay["metric"], decay["higher_is_better"], decay["worse"]) == ("rmse", False, True)
    assert decay["relative"] == pytest.approx((OFFSET - test["rmse"]) / test["rmse"])
    assert metrics["gate_breaches"] == [f"rmse = {OFFSET:.4f} on 200 labelled rows is above the gate's max 1.5"]
    markdown = (root / "out-labels/drift.md").read_text()
    assert "Decay of rmse (gate.baseline.metric; lower is better)" in markdown and "**worse**" in markdown
    assert f"| rmse (gated) | {test['rmse']:.4g} | {OFFSET:.4f} |" in markdown


def test_rows_another_version_answered_are_predicted_again_to_the_same_metrics(setup):
    from gitml.monitor.metrics import label_metrics

    _, bundle_dir, logs = setup
    window, feedback = read_requests(logs["same"]), read_feedback(logs["same"])
    others = window.assign(model_version=window["model_version"].where(window.index % 2 == 0, "another"))
    bundle = load_bundle(bundle_dir, model=False)
    notes: list[str] = []
    mixed = label_metrics(bundle, others, feedback, notes)
    assert "model" in vars(bundle) and notes == []  # built for the rows it did not answer
    assert mixed["metrics"]["rmse"]["current"] == pytest.approx(OFFSET, rel=1e-9)
    lying = window.assign(prediction=window["prediction"] + 1.0)  # what the log says is what is scored
    scored = label_metrics(load_bundle(bundle_dir, model=False), lying, feedback, [])["metrics"]
    assert scored["rmse"]["current"] == pytest.approx(np.sqrt(((OFFSET + 1) ** 2 + (OFFSET - 1) ** 2) / 2), rel=1e-9)


def test_labels_that_are_not_numbers_are_left_out_with_a_note(setup):
    from gitml.monitor.metrics import label_metrics

    _, bundle_dir, logs = setup
    window, feedback = read_requests(logs["same"]), read_feedback(logs["same"])
    feedback = feedback.astype({"label": object})  # as a text log holds them
    feedback.loc[:9, "label"] = "n/a"
    notes: list[str] = []
    metrics = label_metrics(load_bundle(bundle_dir, model=False), window, feedback, notes)
    assert metrics["n_labelled"] == 190 and notes == ["10 label(s) that are not numbers ignored."]


def test_labelled_rows_for_retraining_carry_the_numbers_sent(setup):
    from gitml.gitops.retrain import _summary_line, align_batch

    _, bundle_dir, logs = setup
    signature = load_bundle(bundle_dir, model=False).signature
    rows = labelled(logs["same"], "y", signature.features, regression=True)
    window = read_requests(logs["same"]).iloc[:200]
    sent = window["prediction"].to_numpy() + np.where(np.arange(200) % 2 == 0, -OFFSET, OFFSET)
    batch = align_batch(rows, signature, "y")
    assert batch["y"].dtype == "float64" and list(batch.columns) == [*signature.features, "y"]
    assert np.sort(batch["y"].to_numpy()) == pytest.approx(np.sort(sent), rel=0, abs=0)  # exact round trip
    assert _summary_line(batch, "y", regression=True) == (
        f"200 rows; labels (y): mean {sent.mean():.4g}, min {sent.min():.4g}, max {sent.max():.4g}")


def test_cli_exits_0_on_undrifted_and_1_on_drifted_regression_traffic(setup, monkeypatch, tmp_path, capsys):
    from tests.unit.test_drift_check import run_cli

    root, bundle, logs = setup
    monkeypatch.chdir(tmp_path)
    common = ["drift", "check", "--bundle", bundle, "--cache", root / "cache", "--out", tmp_path / "r"]
    assert run_cli(monkeypatch, *common, "--log-dir", logs["same"]) == 0
    assert "drift check: no drift (600 rows" in capsys.readouterr().out
    assert run_cli(monkeypatch, *common, "--log-dir", logs["moved"]) == 1
    out = capsys.readouterr().out
    assert "features: 1 of 6 drifted (x0)" in out and "predictions: 1 of 1 drifted (prediction); prediction mean" in out


def test_the_repository_s_gate_sets_the_thresholds_and_the_decay_metric(setup):
    """A pipeline bundle records no gate (the package stage does not depend on it): `gitml drift
    check` passes params.yaml's gate, which then decides what labelled rows are held to."""
    from gitml.config.schema import BaselineRule, GateConfig, ThresholdRule

    root, bundle, logs = setup
    gate = GateConfig(baseline=BaselineRule(metric="mae"), thresholds=[ThresholdRule("mae", max=1.0),
                                                                       ThresholdRule("r2", min=0.5, slice="x0")])
    metrics = drift_check(bundle, logs["same"], CFG, root / "out-gate", gate=gate).metrics
    assert metrics["gate_breaches"] == [f"mae = {OFFSET:.4f} on 200 labelled rows is above the gate's max 1.0"]
    assert metrics["metrics"]["mae"]["gated"] and not metrics["metrics"]["rmse"]["gated"]  # the bundle's own gate is not used
    assert metrics["decay"]["metric"] == "mae" and metrics["decay"]["worse"]
