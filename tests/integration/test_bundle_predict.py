"""The gate blocks what it should, and the bundle predicts files in chunks with validation."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from gitml.package.bundle import load_bundle
from tests.conftest import TINY_OVERRIDES, copy_project, git, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(reproduced_template, tmp_path_factory) -> Path:
    """The module's copy of the session's reproduced template (TINY_OVERRIDES, committed)."""
    return copy_project(reproduced_template, tmp_path_factory.mktemp("bundle") / "project")


def test_threshold_above_reach_fails_the_gate_naming_the_rule_and_promote_refuses(built, tmp_path, gitml_main):
    project = copy_project(built, tmp_path / "p")  # its DVC cache too: only the gate reruns
    gitml_main("config", "compose", *TINY_OVERRIDES,
        "gate.thresholds=[{metric:roc_auc,min:0.99999},{metric:accuracy,min:0.5}]", cwd=project)
    out = run("dvc", "repro", cwd=project)
    assert "gate FAIL" in out.stderr
    report = json.loads((project / "reports/gate.json").read_text())
    failed = [r["rule"] for r in report["rules"] if r["verdict"] == "fail"]
    assert failed == ["test.roc_auc >= 0.99999"]
    assert "test.roc_auc >= 0.99999" in (project / "reports/gate.md").read_text()
    bundle = load_bundle(project / "models/bundle")  # the verdict names the bundle it judged
    assert report["bundle"] == {"id": bundle.id, "manifest_sha256": bundle.manifest_sha256}
    assert "Running stage 'package'" not in out.stdout  # gate params do not rebuild the bundle

    verify = gitml_main("gate", "verify", cwd=project, check=False)
    assert verify.returncode == 1 and "test.roc_auc >= 0.99999" in verify.stderr
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "too strict", cwd=project)
    refused = gitml_main("promote", "--stage", "staging", cwd=project, check=False)
    assert refused.returncode == 1 and "test.roc_auc >= 0.99999" in refused.stderr
    assert git("tag", cwd=project).stdout.strip() == ""


def test_summary_ends_with_gate_verdict_and_bundle_path(built, gitml_main):
    out = gitml_main("summary", cwd=built).stdout
    assert "gate     PASS" in out and "bundle   models/bundle/" in out


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_streams_a_file_in_chunks_and_matches_in_process_predictions(built, tmp_path, suffix, gitml_main):
    bundle = load_bundle(built / "models/bundle")
    rows = pd.read_parquet(built / "data/prepared/test.parquet").drop(columns=["target"])
    rows = pd.concat([rows] * 3, ignore_index=True)  # 342 rows -> 7 chunks of 50
    source = tmp_path / f"rows{suffix}"
    rows.to_csv(source, index=False) if suffix == ".csv" else rows.to_parquet(source)
    out = tmp_path / "scored.parquet"
    done = gitml_main("predict", "--bundle", built / "models/bundle", source, "-o", out, "--chunk-rows", "50",
                      cwd=built)
    assert f"wrote {len(rows)} predictions" in done.stdout
    scored = pd.read_parquet(out)
    expected = bundle.predict(rows)
    assert list(scored.columns) == ["prediction", "proba_0", "proba_1"]
    assert (scored["prediction"].to_numpy() == expected["prediction"].to_numpy()).all()
    assert abs(scored["proba_1"].to_numpy() - expected["proba_1"].to_numpy()).max() < 1e-5


def test_predict_refuses_invalid_rows_naming_column_and_file_row(built, tmp_path, gitml_main):
    rows = pd.read_parquet(built / "data/prepared/test.parquet").drop(columns=["target"]).head(100)
    rows["mean_radius"] = rows["mean_radius"].astype(object)
    rows.loc[77, "mean_radius"] = "big"
    source = tmp_path / "bad.csv"
    rows.to_csv(source, index=False)
    out = tmp_path / "scored.parquet"
    result = gitml_main("predict", "--bundle", built / "models/bundle", source, "-o", out, "--chunk-rows", "50",
                        cwd=built, check=False)
    assert result.returncode == 1
    assert "mean_radius: expected a number" in result.stderr and "77" in result.stderr
    assert not out.exists()
    extra = tmp_path / "extra.csv"
    rows.head(3).assign(mean_radius=1.0, surprise=1).to_csv(extra, index=False)
    result = gitml_main("predict", "--bundle", built / "models/bundle", extra, "-o", out, cwd=built, check=False)
    assert result.returncode == 1 and "surprise: unexpected column" in result.stderr
