"""``drift_check`` and ``gitml drift check`` on a small real bundle: verdicts, report, exit codes."""

from __future__ import annotations

import json
import sys

import pytest

from gitml.config.schema import DetectorKind, DriftConfig
from gitml.errors import ConfigError, DriftCheckError
from gitml.monitor.check import drift_check
from gitml.monitor.settings import load_drift_config
from gitml.package.bundle import load_bundle
from tests.drift_helpers import make_bundle, synthetic_pool, write_feedback, write_requests

CFG = DriftConfig(min_rows=100)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A bundle trained on 2000 synthetic rows; logs of 600 later rows, as drawn and shifted."""
    root = tmp_path_factory.mktemp("drift")
    pool = synthetic_pool(2600)
    moved = synthetic_pool(2600, shift=1.0, shift_features=2)
    bundle_dir = make_bundle(root / "bundle", pool.iloc[:2000])
    bundle = load_bundle(bundle_dir)
    features = bundle.signature.features
    logs = {}
    for name, frame in (("same", pool.iloc[2000:]), ("moved", moved.iloc[2000:])):
        logged = write_requests(root / name, frame[features], bundle.predict(frame[features]),
                                model_version=bundle.version)
        write_feedback(root / name, logged.iloc[:200], frame["target"].iloc[:200])
        logs[name] = root / name
    return root, bundle_dir, logs


def test_unshifted_traffic_is_no_drift_with_a_full_report(setup):
    root, bundle, logs = setup
    report = drift_check(bundle, logs["same"], CFG, root / "out-same", root / "cache", plots=True)
    assert (report.verdict, report.exit_code, report.reasons) == ("no drift", 0, [])
    data = json.loads((root / "out-same/drift.json").read_text())
    assert data["verdict"] == "no drift" and data["detector"] == "tabular"
    assert data["window"]["rows"] == 600 and len(data["features"]["features"]) == 10
    assert data["predictions"]["features"][0]["name"] == "proba_1"
    assert data["metrics"]["n_labelled"] == 200 and data["metrics"]["metrics"]["accuracy"]["gated"]
    for name in ("drift.md", "distributions.png", "p_values.png"):
        assert (root / "out-same" / name).stat().st_size > 0
    assert (root / "out-same/drift.md").read_text().startswith("# Drift check: no drift")


def test_shifted_traffic_is_drift_naming_the_shifted_features(setup):
    root, bundle, logs = setup
    report = drift_check(bundle, logs["moved"], CFG, root / "out-moved", root / "cache")
    assert report.exit_code == 1 and report.is_drift
    assert set(report.features.drifted_features) == {"num_0", "num_1"}
    assert report.features.features[0].name in {"num_0", "num_1"}
    markdown = (root / "out-moved/drift.md").read_text()
    assert markdown.startswith("# Drift check: DRIFT\n\n- features: 2 of 10 drifted")
    assert not list((root / "out-moved").glob("*.png")) and "## Plots" not in markdown  # not asked
    assert "| `num_0` | ks |" in markdown and "## Metrics on labelled traffic" in markdown
    assert report.cache == {"tabular": "loaded", "predictions": "loaded"}  # fitted by the test above


@pytest.mark.parametrize("kind", ["ks", "mmd", "classifier"])
def test_every_detector_reaches_a_verdict_and_multivariate_ones_explain_it(setup, kind):
    root, bundle, logs = setup
    cfg = DriftConfig(detector=DetectorKind(kind), min_rows=100, max_rows=300)
    report = drift_check(bundle, logs["moved"], cfg, root / f"out-{kind}", root / "cache")
    assert report.is_drift and report.features.detector == kind
    if kind != "ks":
        assert report.features.p_value is not None and report.features.diagnostic
        assert set(report.features.drifted_features) >= {"num_0", "num_1"}
    assert report.cache[kind] == "saved"


def test_label_metrics_score_the_logged_answers_and_predict_only_rows_other_models_answered(setup):
    from gitml.monitor.logs import read_feedback, read_requests
    from gitml.monitor.metrics import label_metrics

    _, bundle_dir, logs = setup
    window, feedback = read_requests(logs["same"]), read_feedback(logs["same"])

    def scored(frame):
        bundle = load_bundle(bundle_dir, model=False)
        metrics = label_metrics(bundle, frame, feedback, [])
        return {m: v["current"] for m, v in metrics["metrics"].items()}, "model" in vars(bundle)

    from_log, loaded = scored(window)
    assert not loaded  # every labelled row was answered by this bundle: its model is never built
    others = window.assign(model_version=window["model_version"].where(window.index % 2 == 0, "another"))
    mixed, loaded = scored(others)  # every other labelled row answered by another model
    assert loaded and mixed == pytest.approx(from_log, rel=1e-9)  # predicted again: the same answers
    wrong = window.assign(proba_0=window["proba_1"], proba_1=window["proba_0"])  # a log that lies
    assert scored(wrong)[0]["accuracy"] == pytest.approx(1 - from_log["accuracy"])  # is what is scored


def test_too_few_rows_no_log_and_a_bad_bundle_are_errors_with_exit_code_2(setup, tmp_path):
    _, bundle, logs = setup
    with pytest.raises(DriftCheckError, match=r"drift\.min_rows=1000") as err:
        drift_check(bundle, logs["same"], DriftConfig(min_rows=1000), tmp_path / "out")
    assert err.value.exit_code == 2
    with pytest.raises(DriftCheckError, match="No request log"):
        drift_check(bundle, tmp_path / "no-logs", CFG, tmp_path / "out")
    with pytest.raises(DriftCheckError, match="does not exist"):
        drift_check(tmp_path / "no-bundle", logs["same"], CFG, tmp_path / "out")
    import shutil

    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    (tampered / "reference.parquet").chmod(0o644)
    (tampered / "reference.parquet").write_bytes(b"changed")
    with pytest.raises(DriftCheckError, match=r"reference\.parquet"):
        drift_check(tampered, logs["same"], CFG, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_window_limits_apply(setup):
    root, bundle, logs = setup
    report = drift_check(bundle, logs["same"], DriftConfig(window_rows=150, min_rows=100), root / "out-w")
    assert report.window["rows"] == 150 and report.cache == {"tabular": "off", "predictions": "off"}


def test_config_comes_from_params_with_flags_on_top(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_drift_config(None) == DriftConfig()  # no params.yaml here: the defaults
    cfg = load_drift_config(None, detector="mmd", window_rows=10, window_hours=2.5, p_val=0.01)
    assert (cfg.detector, cfg.window_rows, cfg.window_hours, cfg.p_val) == (DetectorKind.mmd, 10, 2.5, 0.01)
    with pytest.raises(ConfigError, match="Allowed: ks, tabular, mmd, classifier"):
        load_drift_config(None, detector="magic")
    with pytest.raises(ConfigError, match=r"drift\.p_val"):
        load_drift_config(None, p_val=1.5)


def run_cli(monkeypatch, *args: str) -> int:
    """``gitml`` in-process through its real entry point (which maps errors to exit codes)."""
    from gitml.cli import main

    monkeypatch.setattr(sys, "argv", ["gitml", *map(str, args)])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0)


def test_cli_exit_codes_are_0_1_and_2(setup, monkeypatch, tmp_path, capsys):
    root, bundle, logs = setup
    monkeypatch.chdir(tmp_path)
    common = ["drift", "check", "--bundle", bundle, "--cache", root / "cache", "--out", tmp_path / "r"]
    assert run_cli(monkeypatch, *common, "--log-dir", logs["same"], "--window-rows", 500) == 0
    assert "drift check: no drift (500 rows" in capsys.readouterr().out
    assert run_cli(monkeypatch, *common, "--log-dir", logs["moved"]) == 1
    assert "features: 2 of 10 drifted" in capsys.readouterr().out
    assert run_cli(monkeypatch, *common, "--log-dir", logs["moved"], "--window-rows", 50) == 2
    assert "drift.min_rows=200" in capsys.readouterr().err
    assert run_cli(monkeypatch, *common, "--log-dir", logs["moved"], "--detector", "nope") == 2
    assert run_cli(monkeypatch, *common, "--log-dir", logs["moved"], "--params", tmp_path / "absent.yaml") == 2
