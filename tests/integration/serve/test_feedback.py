"""POST /feedback cannot poison or lose the feedback log (issue 12, item 4).

Labels become training data, so each is checked against the requests this server answered
(id, row range, one label a row), a label answered 200 is in the log after shutdown, and a
token can be required. In-process for the cases, then a real server over HTTP.
"""

from __future__ import annotations

import logging
import re
import warnings

import httpx
import pandas as pd
import pytest

from gitml.config.schema import ServeConfig
from gitml.package.bundle import load_bundle
from gitml.serve.app import create_app
from gitml.serve.requestlog import read_log
from gitml.serve.state import ServeSettings, ServeState

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOKEN_ENV = "GITML_FEEDBACK_TOKEN"
TOKEN = "feedback-token-5b1e0c"


@pytest.fixture(autouse=True)
def no_token(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)


@pytest.fixture(scope="module")
def rows(trained) -> pd.DataFrame:
    return load_bundle(trained.synthetic).reference().head(4).reset_index(drop=True)


def make_client(trained, log_dir, **cfg) -> TestClient:
    config = ServeConfig(log_dir=str(log_dir), log_flush_seconds=60, **cfg)
    return TestClient(create_app(ServeState(ServeSettings(bundle=str(trained.synthetic), cfg=config))),
                      raise_server_exceptions=False)


def predict(client, rows, headers=None) -> str:
    response = client.post("/invocations", json={"dataframe_records": rows.to_dict(orient="records")},
                           headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["request_id"]


def labelled(log_dir) -> list[tuple[str, int, str]]:
    frame = read_log(log_dir, "feedback")
    return sorted(map(tuple, frame[["request_id", "row", "label"]].values.tolist())) if len(frame) else []


def test_labels_for_unknown_requests_rows_out_of_range_and_second_labels_are_refused(trained, rows, tmp_path):
    accepted = []
    with make_client(trained, tmp_path) as client:
        first, second = predict(client, rows), predict(client, rows, headers={"x-request-id": "chosen-by-client"})
        assert re.fullmatch(r"[0-9a-f]{40}", second) and first[:8] == second[:8] != "chosen-b"

        def post(body, status):
            response = client.post("/feedback", json=body)
            assert response.status_code == status, (body, response.text)
            return response.json()

        assert post({"request_id": first, "row": 2**63, "label": 1}, 400)["problems"][0]["field"] == "(body).row"
        assert post({"request_id": first, "row": 1, "label": 1}, 200) == {"accepted": 1}  # after the 2^63 row
        accepted.append((first, 1, "1"))
        assert post({"request_id": "chosen-by-client", "label": 1}, 404)["error_code"] == "NOT_FOUND"
        assert post({"request_id": "f" * 40, "label": 1}, 404)["problems"][0]["field"] == "(body)"
        assert "has 4 row(s)" in post({"request_id": first, "row": 4, "label": 0}, 400)["problems"][0]["message"]
        assert "(body).labels[4]" in str(post({"request_id": second, "labels": [0, 1, 0, 1, 0]}, 400)["problems"])
        duplicate = post({"request_id": first, "row": 1, "label": 0}, 409)
        assert duplicate["error_code"] == "CONFLICT" and "already has a label" in duplicate["problems"][0]["message"]
        twice = post({"feedback": [{"request_id": second, "row": 0, "label": 0},
                                   {"request_id": second, "row": 0, "label": 1}]}, 409)
        assert [p["field"] for p in twice["problems"]] == ["feedback[1]"]
        assert post({"request_id": second, "labels": [0, 1, 1, 0]}, 200) == {"accepted": 4}  # nothing was kept
        accepted += [(second, row, label) for row, label in enumerate("0110")]
        spec = client.get("/openapi.json").json()["paths"]["/feedback"]["post"]["responses"]
        assert {"200", "400", "401", "404", "409", "413", "415", "503"} <= set(spec)
    assert labelled(tmp_path) == sorted(accepted)


def test_labels_the_log_cannot_take_get_503_and_none_is_lost(trained, rows, tmp_path):
    client = make_client(trained, tmp_path / "stopped")  # lifespan never ran: no writer
    request_id = predict(client, rows)
    stopped = client.post("/feedback", json={"request_id": request_id, "label": 1})
    assert stopped.status_code == 503 and "not running" in stopped.json()["message"]

    with make_client(trained, tmp_path, feedback_max_pending_rows=6, log_flush_rows=1000) as client:
        first, second = predict(client, rows), predict(client, rows)
        assert client.post("/feedback", json={"request_id": first, "labels": [0, 1, 0, 1]}).status_code == 200
        full = client.post("/feedback", json={"request_id": second, "labels": [1, 1, 1, 1]})
        assert full.status_code == 503 and full.headers["retry-after"] == "1"
        assert full.json()["error_code"] == "UNAVAILABLE" and "limit is 6" in full.json()["message"]
        client.app.state.gitml.feedback_log.flush()  # the writer caught up
        again = client.post("/feedback", json={"request_id": second, "labels": [1, 1, 1, 1]})
        assert again.status_code == 200  # the refused rows were not marked as labelled
    assert labelled(tmp_path) == sorted([(first, r, "01"[r % 2]) for r in range(4)] + [(second, r, "1") for r in range(4)])


def test_open_feedback_on_a_public_address_warns_at_start(trained, tmp_path, caplog, monkeypatch):
    with caplog.at_level(logging.WARNING, logger="gitml.serve.state"):
        with make_client(trained, tmp_path, host="0.0.0.0"):
            pass
        assert "serve.feedback_token_env" in caplog.text
        caplog.clear()
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        with make_client(trained, tmp_path, host="0.0.0.0"):
            pass
        with make_client(trained, tmp_path, host="127.0.0.1", feedback_token_env=""):
            pass
    assert "feedback_token_env" not in caplog.text


@pytest.mark.slow
def test_a_real_server_with_a_token_keeps_every_label_it_answered_200(trained, rows, tmp_path, start_server,
                                                                      monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)  # the server inherits it
    server = start_server(tmp_path, "--bundle", trained.synthetic, "--log-dir", tmp_path / "logs",
                          "--params", trained.synthetic_params)
    answered: list[tuple[str, int, str]] = []
    auth = {"authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.url) as client:
        ids = [predict(client, rows) for _ in range(3)]
        body = {"request_id": ids[0], "row": 0, "label": 1}
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
            refused = client.post("/feedback", json=body, headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in refused.text
        statuses = []
        for request_id in ids:
            for body in ({"request_id": request_id, "row": 2**63, "label": 1},  # 400, then the rest still lands
                         {"request_id": request_id, "row": 3, "label": 0},
                         {"request_id": request_id, "row": 3, "label": 1},  # 409: the first label stands
                         {"request_id": request_id, "row": 4, "label": 1},  # 400: 4 rows
                         {"request_id": request_id[::-1], "row": 0, "label": 1},  # 404
                         {"request_id": request_id, "labels": [1, 0, 1]}):
                response = client.post("/feedback", json=body, headers=auth)
                statuses.append(response.status_code)
                if response.status_code == 200:
                    rows_given = enumerate(body["labels"]) if "labels" in body else [(body["row"], body["label"])]
                    answered += [(request_id, row, str(label)) for row, label in rows_given]
        assert statuses == [400, 200, 409, 400, 404, 200] * 3
    assert server.stop() == 0  # SIGTERM: a clean shutdown writes what is buffered
    assert labelled(tmp_path / "logs") == sorted(answered) and len(answered) == 12
    assert TOKEN not in server.log()


@pytest.mark.slow
def test_with_workers_a_label_lands_on_the_worker_that_answered(trained, rows, tmp_path, start_server):
    server = start_server(tmp_path, "--bundle", trained.synthetic, "--log-dir", tmp_path / "logs",
                          "--params", trained.synthetic_params, "--workers", "2")
    ids = []
    for _ in range(8):  # a connection each
        with httpx.Client(base_url=server.url) as client:
            ids.append(predict(client, rows))
    statuses = set()
    for request_id in ids:
        for _ in range(40):  # a new connection each try: the kernel shares them out over the workers
            response = httpx.post(f"{server.url}/feedback", json={"request_id": request_id, "row": 1, "label": 0})
            statuses.add(response.status_code)
            if response.status_code == 200:
                break
            assert "serve.workers=2" in response.json()["problems"][0]["message"]
        assert response.status_code == 200
    assert statuses <= {200, 409}  # a sibling's request is never "unknown"
    assert server.stop() == 0
    assert labelled(tmp_path / "logs") == sorted((request_id, 1, "0") for request_id in ids)
