"""The request-log contract end to end: what the server writes is what the monitor reads.

The app answers real requests over a real bundle and flushes its logs; the drift check's
own readers (monitor/logs.py) read them back, and the columns are exactly the contract
(package/logschema.py) for that bundle's signature.
"""

from __future__ import annotations

import warnings

import pytest

from gitml.config.schema import DriftConfig, ServeConfig
from gitml.monitor.check import drift_check
from gitml.monitor.logs import labelled, read_feedback, read_window
from gitml.package.bundle import load_bundle
from gitml.package.logschema import FEEDBACK_COLUMNS, request_columns
from gitml.serve.app import create_app
from gitml.serve.state import ServeSettings, ServeState

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    """Requests and labels for 300 reference rows, answered by the app and flushed to disk."""
    logs = tmp_path_factory.mktemp("contract-logs")
    bundle = load_bundle(trained.synthetic)
    rows = bundle.reference().head(300).reset_index(drop=True)
    config = ServeConfig(log_dir=str(logs), log_flush_seconds=60)
    answers = []
    with TestClient(create_app(ServeState(ServeSettings(bundle=str(trained.synthetic), cfg=config)))) as client:
        for start in range(0, len(rows), 100):
            batch = rows.iloc[start:start + 100]
            answer = client.post("/invocations", json={"dataframe_records": batch.to_dict(orient="records")})
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
        for answer in answers[:2]:  # labels for the first two requests only
            labels = [str(p["prediction"]) for p in answer["predictions"]]
            posted = client.post("/feedback", json={"request_id": answer["request_id"], "labels": labels})
            assert posted.status_code == 200, posted.text
    return bundle, rows, answers, logs


def test_the_drift_readers_read_what_the_server_wrote(served):
    bundle, rows, answers, logs = served
    window = read_window(logs).rows
    assert list(window.columns) == request_columns(bundle.signature)
    assert len(window) == len(rows)
    assert set(window["request_id"]) == {a["request_id"] for a in answers}
    assert (window[bundle.signature.features].to_numpy() == rows[bundle.signature.features].to_numpy()).all()
    assert list(read_feedback(logs).columns) == list(FEEDBACK_COLUMNS)
    joined = labelled(logs, bundle.signature.label, bundle.signature.features, classes=bundle.classes)
    assert len(joined) == 200


def test_the_drift_check_runs_on_the_servers_log(served, tmp_path):
    bundle, _, _, logs = served
    report = drift_check(bundle.path, logs, DriftConfig(min_rows=50), tmp_path / "drift", tmp_path / "cache")
    assert report.exit_code == 0, report.reasons  # its own reference rows: no drift, no schema change
    assert report.metrics is not None and report.metrics["n_labelled"] == 200
