"""The real server: uvicorn in a subprocess on 127.0.0.1, called over HTTP.

Formats and refusals over the wire, metrics, the feedback round trip into the logs,
`gitml simulate`, zero-downtime swaps under load, SIGHUP, and SIGTERM under load losing
no answered request.
"""

from __future__ import annotations

import json
import shutil
import signal
import time

import httpx
import pandas as pd
import pytest

from gitml.package.bundle import load_bundle
from gitml.serve.deployment import POINTER, publish
from gitml.serve.requestlog import read_log
from tests.integration.serve.load import Load

pytestmark = pytest.mark.slow


def test_every_format_over_http_metrics_feedback_and_logs(trained, tmp_path, start_server):
    server = start_server(tmp_path, "--bundle", trained.synthetic, "--log-dir", tmp_path / "logs",
                          "--params", trained.synthetic_params)
    rows = load_bundle(trained.synthetic).reference().head(4).reset_index(drop=True)
    records = rows.to_dict(orient="records")
    names = list(rows.columns)
    ok: list[str] = []
    with httpx.Client(base_url=server.url) as client:
        for body in ({"dataframe_split": {"columns": names, "data": rows.to_numpy().tolist()}},
                     {"dataframe_records": records}, {"instances": records}, {"instances": rows.to_numpy().tolist()},
                     {"inputs": {c: rows[c].tolist() for c in names}}, {"inputs": records}):
            response = client.post("/invocations", json=body)
            assert response.status_code == 200, response.text
            assert len(response.json()["predictions"]) == 4
            ok.append(response.headers["x-request-id"])
        csv = client.post("/invocations", content=rows.to_csv(index=False), headers={"content-type": "text/csv"})
        assert csv.status_code == 200 and csv.json()["request_id"] == csv.headers["x-request-id"]
        ok.append(csv.json()["request_id"])
        meta = client.get("/v2/models/model").json()
        types = {i["name"]: i["datatype"] for i in meta["inputs"]}
        v2 = client.post("/v2/models/model/infer", json={"inputs": [
            {"name": c, "shape": [4], "datatype": types[c], "data": rows[c].tolist()} for c in names]})
        assert v2.status_code == 200 and v2.json()["outputs"][1]["shape"] == [4, 2]
        ok.append(v2.headers["x-request-id"])

        bad = client.post("/invocations", json={"dataframe_records": [{**records[0], "num_0": "x", "cat_1": "q"}]})
        assert bad.status_code == 400
        assert {p["field"] for p in bad.json()["problems"]} == {"num_0", "cat_1"}
        assert client.post("/invocations", content=b"num_0\n1", headers={"content-type": "text/xml"}).status_code == 415
        assert client.post("/v2/models/other/infer", json={"inputs": []}).status_code == 404

        for request_id in ok[:3]:
            assert client.post("/feedback", json={"request_id": request_id, "labels": [0, 1, 1, 0]}).status_code == 200
        assert client.post("/feedback", json={"feedback": [{"request_id": ok[3], "row": 2, "label": "1"}]}).json() == {
            "accepted": 1}

        metrics = client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        assert 'gitml_requests_total{endpoint="/invocations",status="200"} 7.0' in text
        assert 'gitml_requests_total{endpoint="/invocations",status="400"} 1.0' in text
        assert 'gitml_requests_total{endpoint="/v2/models/{name}/infer",status="404"} 1.0' in text
        assert "gitml_predicted_rows_total{" in text and "} 32.0" in text
        assert "gitml_feedback_labels_total 13.0" in text

    assert server.stop() == 0
    logged = read_log(tmp_path / "logs")
    assert set(logged["request_id"]) == set(ok) and len(logged) == 4 * len(ok)
    feedback = read_log(tmp_path / "logs", "feedback")
    assert len(feedback) == 13
    joined = logged.merge(feedback, on=["request_id", "row"])
    assert len(joined) == 13 and set(joined["label"]) <= {"0", "1"}


def test_simulate_sends_batches_and_labels(trained, tmp_path, start_server, gitml_main):
    server = start_server(tmp_path, "--bundle", trained.synthetic, "--log-dir", tmp_path / "logs",
                          "--params", trained.synthetic_params)
    for args in (["--source", "synthetic", "--shift", "0.5"],
                 ["--source", "test", "--data", trained.synthetic.parents[1] / "data/prepared", "--shift", "2"]):
        out = gitml_main("simulate", "--url", server.url, "--batches", "3", "--batch-rows", "25", "--seed", "4",
                         "--params", trained.synthetic_params, *args, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "sent 3 batch(es), 75 row(s)" in out.stdout and "0 failed" in out.stdout
        assert "75 label(s) posted" in out.stdout
    refused = gitml_main("simulate", "--url", server.url, "--source", "synthetic", "--params", trained.params,
                         cwd=tmp_path, check=False)
    assert refused.returncode == 1 and "data=synthetic" in refused.stderr
    server.stop()
    assert len(read_log(tmp_path / "logs")) == 150 and len(read_log(tmp_path / "logs", "feedback")) == 150


def posting(bodies: list[dict]):
    """Send for :class:`Load`: each client posts the bodies in turn, from its own place among them."""
    return lambda client, slot, count: client.post("/invocations", json=bodies[(slot + count) % len(bodies)])


def bodies_for(bundle) -> list[dict]:
    rows = load_bundle(bundle).reference().head(20)
    records = rows.to_dict(orient="records")
    return [{"dataframe_records": records[:1]}, {"dataframe_records": records},
            {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()[:5]}}]


def wait_for_version(url: str, version: str, timeout: float = 60) -> float:
    # generous: under a loaded suite a swap (poll, verify, warm-up) has taken over 20 s
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/version").json()["model_version"] == version:
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"{url} did not swap to {version} in {timeout}s")


def test_five_swaps_under_load_fail_no_request(trained, tmp_path, start_server):
    target = tmp_path / "deploy"
    publish(trained.mlp, target, "v1")
    server = start_server(tmp_path, "--deployment", target, "--follow", "--log-dir", tmp_path / "logs",
                          "--params", trained.params)
    versions = {"v1": trained.mlp, "v2": trained.logreg}
    windows: list[tuple[str, float, float]] = []  # (version, first seen, next publish started)
    with Load(server.url, posting(bodies_for(trained.mlp)), clients=4) as load:
        time.sleep(0.5)
        for version in ("v2", "v1", "v2", "v1", "v2"):
            started = time.monotonic()
            if windows:
                windows[-1] = (*windows[-1][:2], started)
            publish(versions[version], target, version)
            windows.append((version, wait_for_version(server.url, version), float("inf")))
            time.sleep(0.4)  # traffic on the new version before the next swap

        # A tampered bundle is refused: still serving v2, the failure logged and counted.
        shutil.copytree(trained.mlp, target / "versions/v3")
        (target / "versions/v3/MODEL_CARD.md").chmod(0o644)
        (target / "versions/v3/MODEL_CARD.md").write_text("tampered")
        (target / POINTER).write_text(json.dumps({"version": "v3", "path": "versions/v3", "deployed_at": "x"}))
        time.sleep(1.0)
        server.signal(signal.SIGHUP)  # re-reads the same bad pointer: refused again
        time.sleep(1.0)
        assert httpx.get(f"{server.url}/version").json()["model_version"] == "v2"
    assert not load.errors, load.errors[:5]
    assert len(load.answers) > 100
    for version, seen, next_publish in windows:  # the last one lasts: v3 is refused
        # Every request that started once the swap was visible, until the next publish, got it.
        after = [a for a in load.answers if seen < a.started < next_publish]
        assert after and all(a.version == version for a in after), (version, {a.version for a in after})
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'gitml_model_reloads_total{model="model"} 5.0' in metrics
    assert 'gitml_model_reload_failures_total{model="model"} 2.0' in metrics
    assert 'version="v2"' in metrics
    log = server.log()
    assert "refusing model v3" in log and "MODEL_CARD.md" in log
    assert server.stop() == 0
    logged = read_log(tmp_path / "logs")
    assert set(logged["model_version"]) == {"v1", "v2"}


def test_sigterm_under_load_loses_no_answered_request(trained, tmp_path, start_server):
    server = start_server(tmp_path, "--bundle", trained.mlp, "--log-dir", tmp_path / "logs")  # 1000 rows / 5 s
    with Load(server.url, posting(bodies_for(trained.mlp)), clients=6, stop_on_error=True) as load:
        time.sleep(2.5)
        server.signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0
    answered = {a.request_id for a in load.answers if a.status == 200}
    assert len(answered) > 50
    logged = read_log(tmp_path / "logs")
    assert answered <= set(logged["request_id"]), len(answered - set(logged["request_id"]))
    assert not [a for a in load.answers if a.status >= 500]
    assert "Traceback" not in server.log()


def test_workers_serve_and_flush_their_own_logs(trained, tmp_path, start_server):
    server = start_server(tmp_path, "--bundle", trained.mlp, "--log-dir", tmp_path / "logs", "--workers", "2")
    ids, seconds = set(), []
    body = bodies_for(trained.mlp)[1]
    with httpx.Client(base_url=server.url) as client:
        for _ in range(20):
            started = time.perf_counter()
            response = client.post("/invocations", json=body)
            seconds.append(time.perf_counter() - started)
            assert response.status_code == 200
            ids.add(response.headers["x-request-id"])
    # Nagle's algorithm off on the shared socket: no 40 ms delayed-ACK stall per answer.
    assert sorted(seconds)[10] < 0.03, sorted(seconds)
    for _ in range(20):  # a connection each: the workers share them out
        response = httpx.post(f"{server.url}/invocations", json=body)
        assert response.status_code == 200
        ids.add(response.headers["x-request-id"])
    workers = {request_id[:16] for request_id in ids}  # the id's prefix is per process
    # Whichever worker answers /metrics counts the requests and rows of every worker.
    for _ in range(6):
        text = httpx.get(f"{server.url}/metrics").text
        assert 'gitml_requests_total{endpoint="/invocations",status="200"} 40.0' in text, (len(workers), text)
        rows = [line for line in text.splitlines() if line.startswith("gitml_predicted_rows_total{")]
        assert len(rows) == 1 and rows[0].endswith(" 800.0"), rows
        info = [line for line in text.splitlines() if line.startswith("gitml_model_info{")]
        assert len(info) == 1 and info[0].endswith(" 1.0"), info
    assert server.stop() == 0
    logged = read_log(tmp_path / "logs")
    assert set(logged["request_id"]) == ids and len(logged) == 40 * 20
    assert isinstance(logged, pd.DataFrame)
