"""The app in-process over a real bundle: every format, every refusal, OpenAPI, metrics, logs."""

from __future__ import annotations

import json
import warnings

import numpy as np
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


def make_client(bundle, log_dir, **cfg) -> TestClient:
    config = ServeConfig(log_dir=str(log_dir), log_flush_seconds=60, **cfg)
    app = create_app(ServeState(ServeSettings(bundle=str(bundle), cfg=config)))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def rows(trained) -> pd.DataFrame:
    return load_bundle(trained.synthetic).reference().head(5).reset_index(drop=True)


@pytest.fixture(scope="module")
def client(trained, tmp_path_factory):
    logs = tmp_path_factory.mktemp("app-logs")
    with make_client(trained.synthetic, logs, max_batch_rows=200, max_body_bytes=200_000) as test_client:
        test_client.logs = logs
        yield test_client


def payloads(rows: pd.DataFrame) -> dict[str, dict]:
    names = list(rows.columns)
    records = rows.to_dict(orient="records")
    return {
        "dataframe_split": {"dataframe_split": {"columns": names, "data": rows.to_numpy().tolist()}},
        "dataframe_split_without_columns": {"dataframe_split": {"data": rows.to_numpy().tolist()}},
        "dataframe_records": {"dataframe_records": records},
        "instances_records": {"instances": records},
        "instances_values": {"instances": rows.to_numpy().tolist()},
        "inputs_columns": {"inputs": {c: rows[c].tolist() for c in names}},
        "inputs_records": {"inputs": records},
    }


def test_every_json_format_and_csv_give_the_same_predictions(client, rows, trained):
    expected = load_bundle(trained.synthetic).predict(rows)
    answers = {name: client.post("/invocations", json=body) for name, body in payloads(rows).items()}
    answers["csv"] = client.post("/invocations", content=rows.to_csv(index=False),
                                 headers={"content-type": "text/csv; charset=utf-8"})
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        assert body["model_version"] == response.headers["x-model-version"]
        assert body["request_id"] == response.headers["x-request-id"]
        predictions = body["predictions"]
        assert [p["prediction"] for p in predictions] == expected["prediction"].tolist(), name
        proba = np.array([p["probabilities"]["1"] for p in predictions])
        assert np.abs(proba - expected["proba_1"].to_numpy()).max() < 1e-5, name
        assert set(predictions[0]["probabilities"]) == {"0", "1"}


def test_one_row_as_column_scalars(client, rows):
    response = client.post("/invocations", json={"inputs": rows.iloc[0].to_dict()})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 1


def test_bodies_over_the_inline_limit_are_answered_from_the_thread_pool(trained, tmp_path):
    from gitml.serve import app as serve_app

    bundle = load_bundle(trained.synthetic)
    rows = pd.concat([bundle.reference()] * 60, ignore_index=True).head(6000)
    body = json.dumps(payloads(rows)["dataframe_split"])
    assert len(body) > serve_app.INLINE_BYTES  # the thread-pool path, not the event loop
    with make_client(trained.synthetic, tmp_path, max_batch_rows=10_000, max_body_bytes=8_000_000) as big:
        response = big.post("/invocations", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 200, response.text[:300]
        assert [p["prediction"] for p in response.json()["predictions"]] == bundle.predict(rows)["prediction"].tolist()
    assert len(read_log(tmp_path)) == 6000


def test_large_csv_takes_the_arrow_path_and_agrees(client, trained):
    bundle = load_bundle(trained.synthetic)
    rows = pd.concat([bundle.reference()] * 2, ignore_index=True).head(150)
    text = rows.to_csv(index=False, float_format="%.17g")
    assert len(text) > 16_384  # gitml.serve.formats.ARROW_CSV_BYTES
    response = client.post("/invocations", content=text, headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    assert [p["prediction"] for p in response.json()["predictions"]] == bundle.predict(rows)["prediction"].tolist()
    bad = rows.astype({"num_2": object})
    bad.loc[7, "num_2"], bad.loc[9, "num_5"] = "abc", None
    response = client.post("/invocations", content=bad.to_csv(index=False, float_format="%.17g"),
                           headers={"content-type": "text/csv"})
    problems = {p["field"]: p["message"] for p in response.json()["problems"]}
    assert response.status_code == 400 and problems["num_2"] == "expected a number (float) (row(s) 7)"
    assert problems["num_5"] == "NaN/inf not allowed (row(s) 9)"
    broken = text.replace("\n", "\nxyz,", 3)  # ragged rows: arrow refuses, the exact parser explains
    response = client.post("/invocations", content=broken, headers={"content-type": "text/csv"})
    assert response.status_code == 400 and response.json()["problems"][0]["field"] == "(csv)"


@pytest.mark.parametrize(("body", "content_type", "status", "field", "words"), [
    (b"{not json", "application/json", 400, "(body)", "malformed JSON"),
    (b"[1, 2]", "application/json", 400, "(body)", "expected a JSON object"),
    (b'{"dataframe_records": [], "instances": []}', "application/json", 400, "(body)", "exactly one"),
    (b'{"dataframe_records": []}', "application/json", 400, "(batch)", "empty batch"),
    (b'{"dataframe_records": [{"num_0": 1}], "extra": 1}', "application/json", 400, "(body)", "unknown key"),
    (b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}', "application/json", 400,
     "dataframe_split.data", "do not have 1 value"),
    (b'{"instances": [[1, 2]]}', "application/json", 400, "instances", "do not have"),
    (b'{"inputs": {"num_0": [1, 2], "num_1": [1]}}', "application/json", 400, "inputs", "one common length"),
    (b"a,b\n1,2,3\n", "text/csv", 400, "(csv)", "do not have 2"),
    (b"", "text/csv", 400, "(body)", "header row"),
    (b"\xff\xfe", "text/csv", 400, "(body)", "UTF-8"),
    (b"num_0\n1\n", "application/xml", 415, None, "Unsupported content type"),
    (b"{}", None, 415, None, "Unsupported content type"),
])
def test_bad_requests_are_4xx_with_field_messages(client, body, content_type, status, field, words):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/invocations", content=body, headers=headers)
    assert response.status_code == status, response.text
    answer = response.json()
    assert words in answer["message"] or any(words in p["message"] for p in answer["problems"])
    if field:
        assert field in {p["field"] for p in answer["problems"]}


def test_signature_problems_name_every_field(client, rows):
    record = rows.iloc[0].to_dict()
    record.update(num_0="abc", num_1=float("nan"), cat_0="zebra", unknown=1)
    del record["num_2"]
    response = client.post("/invocations", content=json.dumps({"dataframe_records": [record]}),
                           headers={"content-type": "application/json"})
    assert response.status_code == 400
    problems = {p["field"]: p["message"] for p in response.json()["problems"]}
    assert problems["num_0"].startswith("expected a number")
    assert problems["num_1"].startswith("NaN/inf not allowed")
    assert "outside the allowed categories" in problems["cat_0"] and "'zebra'" in problems["cat_0"]
    assert problems["num_2"] == "missing column" and problems["unknown"].startswith("unexpected column")


def test_limits_are_413(client, rows):
    many = pd.concat([rows] * 41, ignore_index=True)  # 205 rows > max_batch_rows=200
    response = client.post("/invocations", json=payloads(many)["dataframe_split"])
    assert response.status_code == 413 and "max_batch_rows" in response.json()["message"]
    huge = b'{"instances": [' + b"1," * 150_000 + b"1]}"
    response = client.post("/invocations", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "max_body_bytes" in response.json()["message"]


def test_open_inference_protocol_v2(client, rows, trained):
    meta = client.get("/v2/models/model").json()
    assert meta["name"] == "model" and meta["platform"] == "gitml_torch_mlp"
    assert {i["name"]: i["datatype"] for i in meta["inputs"]}["cat_0"] == "BYTES"
    assert meta["outputs"][1] == {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]}
    version = meta["versions"][0]
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2/models/model/ready").json()["ready"] is True
    assert client.get(f"/v2/models/model/versions/{version}").status_code == 200
    types = {i["name"]: i["datatype"] for i in meta["inputs"]}
    inputs = [{"name": c, "shape": [len(rows), 1] if i % 2 else [len(rows)], "datatype": types[c],
               "data": [[v] for v in rows[c].tolist()] if i % 2 else rows[c].tolist()}
              for i, c in enumerate(rows.columns)]
    response = client.post("/v2/models/model/infer", json={"id": "req-7", "inputs": inputs})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == "req-7" and answer["model_version"] == version
    outputs = {o["name"]: o for o in answer["outputs"]}
    expected = load_bundle(trained.synthetic).predict(rows)
    assert outputs["prediction"]["datatype"] == "BYTES"
    assert outputs["prediction"]["data"] == [str(p) for p in expected["prediction"]]
    assert outputs["probabilities"]["shape"] == [len(rows), 2]
    proba = np.array(outputs["probabilities"]["data"]).reshape(len(rows), 2)
    assert np.abs(proba[:, 1] - expected["proba_1"].to_numpy()).max() < 1e-5
    only = client.post(f"/v2/models/model/versions/{version}/infer",
                       json={"inputs": inputs, "outputs": [{"name": "prediction"}]}).json()
    assert [o["name"] for o in only["outputs"]] == ["prediction"]


@pytest.mark.parametrize("path", ["/v2/models/other", "/v2/models/other/ready", "/v2/models/model/versions/v0",
                                  "/nowhere"])
def test_unknown_models_and_paths_are_404(client, path):
    assert client.get(path).status_code == 404


def test_v2_refusals_name_the_tensor(client, rows):
    bad = [{"name": "num_0", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
           {"name": "cat_0", "shape": [3, 2], "datatype": "BYTES", "data": []},
           {"name": "nope", "shape": [1], "datatype": "FP64", "data": [1.0]},
           {"name": "num_1", "shape": [2], "datatype": "FP64", "data": [1.0]}]
    response = client.post("/v2/models/model/infer", json={"inputs": bad})
    assert response.status_code == 400
    problems = {p["field"]: p["message"] for p in response.json()["problems"]}
    assert "use FP64" in problems["num_0"] and "shape" in problems["cat_0"]
    assert problems["nope"].startswith("unexpected input") and "data holds 1" in problems["num_1"]
    assert client.post("/v2/models/model/infer", content=b"x", headers={"content-type": "text/csv"}).status_code == 415


def test_health_version_ping(client):
    assert client.get("/ping").status_code == 200
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"]["family"] == "torch_mlp"
    assert client.get("/version").json()["model_version"] == health["version"]


def test_openapi_documents_every_format_and_its_examples_are_accepted(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv"} <= set(body)
    refs = {s["$ref"].rsplit("/", 1)[1] for s in body["application/json"]["schema"]["oneOf"]}
    assert refs == {"DataframeSplit", "DataframeRecords", "Instances", "Inputs"}
    schemas = spec["components"]["schemas"]
    assert schemas["InputRow"]["properties"]["cat_0"]["enum"] == ["a", "b", "c", "d"]
    assert set(schemas["InputRow"]["required"]) == {f"num_{i}" for i in range(8)} | {"cat_0", "cat_1"}
    for name, example in body["application/json"]["examples"].items():
        response = client.post("/invocations", json=example["value"])
        assert response.status_code == 200, (name, response.text)
    csv = client.post("/invocations", content=body["text/csv"]["example"], headers={"content-type": "text/csv"})
    assert csv.status_code == 200, csv.text
    infer = spec["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]["application/json"]
    assert client.post("/v2/models/model/infer", json=infer["example"]).status_code == 200
    feedback = spec["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]
    assert {"one_row", "all_rows", "batch"} <= set(feedback["examples"])
    assert "InvocationResponse" in schemas and "ErrorResponse" in schemas


def test_metrics_count_requests_rows_classes_and_model(client, rows):
    client.post("/invocations", json=payloads(rows)["dataframe_split"])
    client.post("/invocations", content=b"{", headers={"content-type": "application/json"})
    text = client.get("/metrics").text
    assert 'gitml_requests_total{endpoint="/invocations",status="200"}' in text
    assert 'gitml_requests_total{endpoint="/invocations",status="400"}' in text
    assert 'gitml_request_duration_seconds_bucket{endpoint="/invocations"' in text
    assert "gitml_predicted_rows_total{" in text and "gitml_predicted_class_total{" in text
    assert 'gitml_model_info{bundle_id=' in text and 'gitml_model_reloads_total{model="model"} 0.0' in text
    assert 'gitml_model_reload_failures_total{model="model"} 0.0' in text


def test_feedback_validation(client, rows):
    # Labels only for requests this server answered (tests/integration/serve/test_feedback.py has the rest).
    abc, a, b = (client.post("/invocations", json=payloads(rows)["instances_records"]).json()["request_id"]
                 for _ in range(3))
    ok = client.post("/feedback", json={"request_id": abc, "row": 4, "label": 1})
    assert ok.status_code == 200 and ok.json() == {"accepted": 1}
    assert client.post("/feedback", json={"request_id": abc, "labels": [0, "1", 1.0]}).json() == {"accepted": 3}
    assert client.post("/feedback", json={"feedback": [{"request_id": a, "row": 2, "label": 0},
                                                       {"request_id": b, "label": "1"}]}).json()["accepted"] == 2
    for bad, field in [({"request_id": abc, "label": 7}, "label"), ({"request_id": abc, "label": True}, "label"),
                       ({"request_id": "a b", "label": 0}, "request_id"), ({"request_id": abc}, "(body)"),
                       ({"request_id": abc, "row": -1, "label": 0}, "row"),
                       ({"request_id": abc, "row": 1, "labels": [0]}, "labels"),
                       ({"feedback": []}, "feedback"), ([1], "(body)")]:
        response = client.post("/feedback", json=bad)
        assert response.status_code == 400, bad
        assert any(field in p["field"] for p in response.json()["problems"]), (bad, response.text)
    assert client.post("/feedback", content=b"request_id=1", headers={
        "content-type": "application/x-www-form-urlencoded"}).status_code == 415


def test_logs_hold_every_answered_row_after_shutdown(trained, tmp_path, rows):
    with make_client(trained.synthetic, tmp_path) as test_client:
        answers = [test_client.post("/invocations", json=body).json() for body in payloads(rows).values()]
        test_client.post("/invocations", json={"instances": [[1]]})  # refused: not logged
        test_client.post("/feedback", json={"request_id": answers[0]["request_id"], "labels": [0, 1, 0, 1, 0]})
    logged = read_log(tmp_path)
    assert len(logged) == len(rows) * len(answers)
    assert set(logged["request_id"]) == {a["request_id"] for a in answers}
    first = logged[logged["request_id"] == answers[0]["request_id"]].sort_values("row")
    assert first["row"].tolist() == list(range(len(rows)))
    assert first["cat_0"].tolist() == rows["cat_0"].tolist()
    assert np.allclose(first["num_3"], rows["num_3"])
    assert first["prediction"].tolist() == [str(p["prediction"]) for p in answers[0]["predictions"]]
    assert np.allclose(first["proba_1"], [p["probabilities"]["1"] for p in answers[0]["predictions"]])
    assert str(logged["ts"].dtype) == "datetime64[us, UTC]" and logged["model_version"].nunique() == 1
    feedback = read_log(tmp_path, "feedback")
    assert feedback["label"].tolist() == ["0", "1", "0", "1", "0"] and feedback["row"].tolist() == [0, 1, 2, 3, 4]
    files = list((tmp_path / "requests").rglob("*"))
    assert all(f.name.startswith("part-") for f in files if f.is_file())
    assert any(f.name.startswith("date=") for f in files) and any(f.name.startswith("hour=") for f in files)


def test_parquet_log_schema_follows_the_signature(trained, tmp_path):
    import pyarrow.parquet as pq

    reference = load_bundle(trained.mlp).reference().head(3)
    with make_client(trained.mlp, tmp_path) as test_client:
        response = test_client.post("/invocations", content=reference.to_csv(index=False),
                                    headers={"content-type": "text/csv"})
        assert response.status_code == 200
    (part,) = (tmp_path / "requests").rglob("part-*.parquet")
    schema = pq.read_schema(part)
    assert str(schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("row").type) == "int64" and str(schema.field("mean_radius").type) == "double"
    assert schema.names[:4] == ["request_id", "row", "ts", "model_version"]
    assert schema.names[-3:] == ["prediction", "proba_0", "proba_1"]
