"""Faults in the request log cannot fake a drift verdict or hide behind one (issue 12, item 6).

Logs are written by the server's own writer (``serve/requestlog.py``); the detectors are
alibi-detect's. Each fault below gave a wrong verdict before: repeated files a prediction
drift alarm, 10% NaN in a feature a quiet verdict, a renamed column drift in that column.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from gitml.config.schema import DriftConfig
from gitml.errors import ConfigError
from gitml.gitops.retrain import drift_verdict
from gitml.monitor.check import drift_check
from gitml.monitor.logs import read_requests, read_window
from gitml.monitor.settings import validate_drift_config
from gitml.package.bundle import load_bundle
from tests.drift_helpers import START, make_bundle, serve_log, synthetic_pool

CFG = DriftConfig(min_rows=100)
NULLABLE = "num_7"  # the one column the bundle's data contract lets be missing


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A bundle trained on 2000 synthetic rows and 600 later rows of the same distribution."""
    root = tmp_path_factory.mktemp("faults")
    pool = synthetic_pool(2600)
    bundle = load_bundle(make_bundle(root / "bundle", pool.iloc[:2000], nullable=(NULLABLE,)))
    current = pool.iloc[2000:].reset_index(drop=True)
    once = root / "once"
    serve_log(once, bundle, current)
    return root, bundle, current, drift_check(bundle.path, once, CFG, root / "out-once")


def spoil(current: pd.DataFrame, column: str, value: float, share: float = 0.1) -> pd.DataFrame:
    """``current`` with ``value`` in every ``1/share``-th row of ``column``."""
    spoiled = current.copy()
    spoiled.loc[spoiled.index[:: round(1 / share)], column] = value
    return spoiled


def test_the_bundle_has_the_nullable_column_the_tests_rely_on(setup):
    _, bundle, _, once = setup
    nullable = {c.name for c in bundle.signature.inputs if c.nullable}
    assert nullable == {NULLABLE}
    assert once.verdict == "no drift" and once.window["duplicates_dropped"] == 0


# ------------------------------------------------------------------ repeated rows


def test_log_files_shipped_twice_give_the_verdict_of_once_and_say_how_many_rows_repeated(setup, tmp_path):
    root, bundle, _, once = setup
    twice = tmp_path / "logs"
    shutil.copytree(root / "once", twice)
    shutil.copytree(root / "once/requests", twice / "requests/shipped-again")  # a second folder
    report = drift_check(bundle.path, twice, CFG, tmp_path / "out")
    assert (report.verdict, report.exit_code) == ("no drift", 0)
    assert report.window["rows"] == 600 and report.window["duplicates_dropped"] == 600
    assert report.window["duplicates_conflicting"] == 0
    # Not only the same verdict: the same test on the same rows.
    assert report.features.p_values == once.features.p_values
    assert report.predictions.p_values == once.predictions.p_values
    data = json.loads((tmp_path / "out/drift.json").read_text())
    assert data["window"]["duplicates_dropped"] == 600 and data["verdict"] == "no drift"
    assert "600 repeated row(s) dropped" in " ".join(data["notes"])
    assert "600 repeated row(s) (same request_id and row) dropped, 0 of them with other values." in \
        (tmp_path / "out/drift.md").read_text()


def test_the_same_rows_in_a_second_file_count_once_whatever_the_window(tmp_path):
    frame = pd.DataFrame({"request_id": [f"r{i // 4}" for i in range(240)], "row": np.arange(240) % 4,
                          "ts": START + pd.to_timedelta(np.arange(240) * 60, unit="s"),
                          "x": np.arange(240, dtype=float)})
    for hour, part in frame.groupby(frame["ts"].dt.floor("h")):
        folder = tmp_path / f"requests/date={hour:%Y-%m-%d}/hour={hour:%H}"
        folder.mkdir(parents=True)
        part.to_parquet(folder / "part-1-1-0.parquet")
        part.iloc[::2].to_parquet(folder / "part-2-1-0.parquet")  # half of it again, in another file
    altered = frame.iloc[[239]].assign(x=-1.0)  # the newest row again, with another value
    altered.to_parquet(tmp_path / "requests/date=2026-11-29/hour=11/part-3-1-0.parquet")
    for rows in (1, 59, 60, 61, 120, 239, 240, 500):
        window = read_window(tmp_path, window_rows=rows)
        assert window.rows["x"].tolist() == frame["x"].tolist()[-rows:], rows
        repeated = [i for i in range(max(240 - rows, 0), 240) if i % 2 == 0]  # every other row, again
        assert window.duplicates == len(repeated) + 1, rows
        assert window.conflicting == 1
    assert read_requests(tmp_path)["request_id"].is_unique is False  # ids repeat across rows ...
    assert not read_requests(tmp_path).duplicated(["request_id", "row"]).any()  # ... (id, row) never


# ------------------------------------------------------------------ invalid values


@pytest.mark.parametrize(("column", "value"), [("num_3", np.nan), ("num_3", np.inf), ("cat_0", None),
                                               (NULLABLE, -np.inf)])
def test_a_tenth_of_a_feature_invalid_is_exit_2_naming_the_feature_and_its_share(setup, tmp_path, column, value):
    _, bundle, current, _ = setup
    serve_log(tmp_path / "logs", bundle, spoil(current, column, value), answered=current)
    report = drift_check(bundle.path, tmp_path / "logs", CFG, tmp_path / "out")
    assert (report.verdict, report.exit_code, report.is_drift) == ("invalid_data", 2, False)
    assert report.features is None and report.predictions is None  # no detector ran
    assert len(report.reasons) == 1 and report.reasons[0].startswith(f"invalid values: {column}: ")
    assert "10.0% invalid is above drift.max_invalid_share=0.05" in report.reasons[0]
    quality = json.loads((tmp_path / "out/drift.json").read_text())["quality"]
    kind = "infinite" if value is not None and np.isinf(value) else "missing"
    assert quality[column][kind] == pytest.approx(0.1) and quality[column]["invalid"] == pytest.approx(0.1)
    assert all(q["invalid"] == 0 for name, q in quality.items() if name != column)
    markdown = (tmp_path / "out/drift.md").read_text()
    assert markdown.startswith("# Drift check: INVALID DATA (no verdict)")
    assert f"| `{column}` |" in markdown and "**10.0%**" in markdown
    assert not (tmp_path / "out/p_values.png").exists()
    assert drift_verdict(tmp_path / "out/drift.json") is False  # retrain-pr opens nothing


def test_missing_values_the_contract_allows_and_shares_under_the_limit_are_reported_not_fatal(setup, tmp_path):
    _, bundle, current, _ = setup
    spoiled = spoil(spoil(current, NULLABLE, np.nan, share=0.25), "num_2", np.inf, share=0.02)
    serve_log(tmp_path / "logs", bundle, spoiled, answered=current)
    report = drift_check(bundle.path, tmp_path / "logs", CFG, tmp_path / "out")
    assert report.exit_code in (0, 1) and report.features is not None
    quality = {q.name: q for q in report.quality}
    assert (quality[NULLABLE].missing, quality[NULLABLE].invalid) == (pytest.approx(0.25), 0.0)
    assert quality["num_2"].infinite == pytest.approx(0.02) and quality["num_2"].invalid == pytest.approx(0.02)
    assert "num_2" not in report.features.drifted_features  # 2% infinities take the median, not the tail
    markdown = (tmp_path / "out/drift.md").read_text()
    assert f"| `{NULLABLE}` | 25.0% | 0.0% | yes | 0.0% |" in markdown
    assert "| `num_2` | 0.0% | 2.0% | no | 2.0% |" in markdown
    strict = drift_check(bundle.path, tmp_path / "logs", DriftConfig(min_rows=100, max_invalid_share=0.0),
                         tmp_path / "out-strict")
    assert strict.verdict == "invalid_data" and [q.name for q in strict.invalid] == ["num_2"]


# ------------------------------------------------------------------ schema changes


def test_a_renamed_column_is_a_schema_change_naming_both_columns_not_drift(setup, tmp_path):
    _, bundle, current, _ = setup
    logs = tmp_path / "logs"
    serve_log(logs, bundle, current.iloc[:300])
    serve_log(logs, bundle, current.iloc[300:], start=START + pd.Timedelta(hours=1), rename={"num_3": "num_3_v2"})
    report = drift_check(bundle.path, logs, CFG, tmp_path / "out")
    assert (report.verdict, report.exit_code, report.is_drift) == ("schema_change", 2, False)
    assert report.features is None  # never fed to the detectors
    assert list(report.schema.missing) == ["num_3"] and list(report.schema.new) == ["num_3_v2"]
    text = " ".join(report.reasons)
    assert "missing from the request log: num_3 (1 file(s), e.g. requests/date=2026-11-29/hour=09/" in text
    assert "not in the signature: num_3_v2 (1 file(s)" in text and "(num_3 -> num_3_v2?)" in text
    assert "num_3" not in {q.name for q in report.quality}  # its gaps are the schema change, not NaN
    data = json.loads((tmp_path / "out/drift.json").read_text())
    assert data["verdict"] == "schema_change" and data["exit_code"] == 2 and data["features"] is None
    assert data["schema"]["missing"]["num_3"][0].startswith("requests/date=2026-11-29/hour=09/part-")
    assert (tmp_path / "out/drift.md").read_text().startswith("# Drift check: SCHEMA CHANGE (no verdict)")
    assert drift_verdict(tmp_path / "out/drift.json") is False


def test_a_changed_type_and_an_extra_column_are_schema_changes(setup, tmp_path):
    _, bundle, current, _ = setup
    logs = tmp_path / "logs"
    serve_log(logs, bundle, current)
    folder = next((logs / "requests").rglob("hour=08"))
    frame = pd.read_parquet(next(folder.iterdir()))
    frame = frame.assign(request_id=frame["request_id"].astype(str) + "-b", num_0=frame["num_0"].astype(str),
                         debug_flag=1)
    frame.iloc[::12].to_parquet(folder / "part-9-9-9.parquet")  # its index is stored, and is no column
    report = drift_check(bundle.path, logs, CFG, tmp_path / "out")
    assert report.verdict == "schema_change" and not report.schema.missing
    assert report.schema.changed["num_0"]["expected"] == "float"
    assert report.schema.changed["num_0"]["found"] == "string"
    assert list(report.schema.new) == ["debug_flag"]
    assert any("column num_0 is stored as string in the request log, the signature says float" in r
               for r in report.reasons)


def test_files_outside_the_window_do_not_count(setup, tmp_path):
    _, bundle, current, _ = setup
    logs = tmp_path / "logs"
    serve_log(logs, bundle, current.iloc[:300], rename={"num_3": "old_name"})  # an hour before the window
    serve_log(logs, bundle, current.iloc[300:], start=START + pd.Timedelta(hours=2))
    report = drift_check(bundle.path, logs, DriftConfig(min_rows=100, window_rows=300), tmp_path / "out")
    assert report.verdict == "no drift" and report.schema is None


def test_a_check_that_cannot_run_leaves_no_earlier_verdict_for_retrain_pr(setup, tmp_path):
    from gitml.errors import DriftCheckError

    root, bundle, _, _ = setup
    shifted = synthetic_pool(2600, shift=1.0, shift_features=2).iloc[2000:]
    serve_log(tmp_path / "moved", bundle, shifted)
    assert drift_check(bundle.path, tmp_path / "moved", CFG, tmp_path / "out").verdict == "drift"
    assert drift_verdict(tmp_path / "out/drift.json") is True
    with pytest.raises(DriftCheckError, match=r"drift\.min_rows=5000"):
        drift_check(bundle.path, root / "once", DriftConfig(min_rows=5000), tmp_path / "out")
    # json, md and plots gone; the history of earlier checks stays (it holds no verdict retrain-pr reads)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["history.csv", "history_features.csv",
                                                                     "history_p_values.json"]


# ------------------------------------------------------------------ settings and CLI


def test_max_invalid_share_is_checked_in_conf_and_params_yaml_naming_key_and_file(conf_dir, tmp_path):
    import yaml

    from gitml.config.compose import compose, to_plain
    from gitml.config.params import load_params

    with pytest.raises(ConfigError, match=r"drift\.max_invalid_share.*between 0 and 1"):
        validate_drift_config(DriftConfig(max_invalid_share=1.5))
    with pytest.raises(ConfigError) as info:
        compose(conf_dir, ["drift.max_invalid_share=2"])
    assert info.value.key == "drift.max_invalid_share"
    data = to_plain(compose(conf_dir))
    assert data["drift"]["max_invalid_share"] == 0.05  # conf/drift/default.yaml
    data["drift"]["max_invalid_share"] = -0.1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_params(tmp_path / "params.yaml")
    assert (info.value.key, info.value.file) == ("drift.max_invalid_share", str(tmp_path / "params.yaml"))


def test_cli_exits_2_on_a_schema_change_and_invalid_values_with_the_reasons_on_stderr(setup, tmp_path,
                                                                                     monkeypatch, capsys):
    from gitml.cli import main

    _, bundle, current, _ = setup
    serve_log(tmp_path / "bad", bundle, spoil(current, "num_5", np.nan, share=0.2), answered=current)
    serve_log(tmp_path / "renamed", bundle, current, rename={"cat_1": "colour"})
    monkeypatch.chdir(tmp_path)
    for logs, expected in (("bad", "num_5: 20.0% missing"), ("renamed", "cat_1 -> colour")):
        monkeypatch.setattr(sys, "argv", ["gitml", "drift", "check", "--bundle", str(bundle.path),
                                          "--log-dir", logs, "--out", f"out-{logs}"])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 2
        captured = capsys.readouterr()
        assert expected in captured.err and "Traceback" not in captured.err
        assert json.loads((tmp_path / f"out-{logs}/drift.json").read_text())["exit_code"] == 2
