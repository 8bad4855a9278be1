"""A regression bundle served: a number per row in every answer, log and document.

The app runs in-process over a tiny real regression bundle (tests/tiny_bundles.py: Ridge on
four features, written by the library's own ``assemble``); tritonclient talks to a live
``gitml serve`` over the same bundle. Every answer must equal the bundle's own
``predict`` (what ``gitml predict`` writes), and nothing may mention a class or a probability.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gitml.config.schema import ServeConfig
from gitml.gate.judge import measure_latency
from gitml.monitor.logs import read_requests
from gitml.package.bundle import load_bundle
from gitml.package.logschema import FEEDBACK, request_columns
from gitml.serve.app import create_app
from gitml.serve.formats import ARROW_STREAM, arrow_stream
from gitml.serve.requestlog import read_log
from gitml.serve.simulate import simulate
from gitml.serve.state import ServeSettings, ServeState
from tests.integration.serve.conftest import Server
from tests.integration.serve.test_real_clients import schemathesis
from tests.tiny_bundles import FEATURES, rows, tiny_bundle

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

N = 5


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return tiny_bundle(tmp_path_factory.mktemp("regression-serve") / "bundle", regression=True)


@pytest.fixture(scope="module")
def bundle(bundle_dir):
    return load_bundle(bundle_dir)


def _client(bundle_dir, log_dir) -> TestClient:
    config = ServeConfig(log_dir=str(log_dir), log_flush_seconds=60)
    return TestClient(create_app(ServeState(ServeSettings(bundle=str(bundle_dir), cfg=config))),
                      raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(bundle_dir, tmp_path_factory):
    with _client(bundle_dir, tmp_path_factory.mktemp("regression-logs")) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return rows(N, seed=7)


@pytest.fixture(scope="module")
def expected(bundle, frame) -> np.ndarray:
    numbers = bundle.predict(frame)["prediction"]
    assert numbers.dtype == np.float64 and numbers.nunique() == N  # the rows get different numbers
    return numbers.to_numpy()


def _tensors(frame: pd.DataFrame) -> list[dict]:
    return [{"name": c, "shape": [len(frame)], "datatype": "FP64", "data": frame[c].tolist()} for c in FEATURES]


def test_every_json_format_and_csv_answer_the_number_alone(client, frame, expected):
    bodies = {
        "dataframe_split": {"dataframe_split": {"columns": FEATURES, "data": frame.to_numpy().tolist()}},
        "dataframe_records": {"dataframe_records": frame.to_dict(orient="records")},
        "instances": {"instances": frame.to_numpy().tolist()},
        "inputs": {"inputs": {c: frame[c].tolist() for c in FEATURES}},
    }
    answers = {name: client.post("/invocations", json=body) for name, body in bodies.items()}
    answers["csv"] = client.post("/invocations", content=frame.to_csv(index=False),
                                 headers={"content-type": "text/csv"})
    for name, answer in answers.items():
        assert answer.status_code == 200, (name, answer.text)
        predictions = answer.json()["predictions"]
        assert all(list(p) == ["prediction"] and type(p["prediction"]) is float for p in predictions), name
        np.testing.assert_allclose([p["prediction"] for p in predictions], expected, rtol=1e-12, err_msg=name)


def test_an_arrow_answer_is_one_float64_prediction_column(client, frame, expected):
    answer = client.post("/invocations", content=arrow_stream(pa.Table.from_pandas(frame, preserve_index=False)),
                         headers={"content-type": ARROW_STREAM, "accept": ARROW_STREAM})
    assert answer.status_code == 200, answer.text
    table = pa.ipc.open_stream(answer.content).read_all()
    assert table.schema.names == ["prediction"] and table.schema.field("prediction").type == pa.float64()
    assert table.schema.metadata[b"request_id"].decode() == answer.headers["x-request-id"]
    np.testing.assert_allclose(table.column("prediction").to_numpy(), expected, rtol=1e-12)


def test_oip_metadata_and_answers_have_one_fp64_output(client, frame, expected):
    health = client.get("/health").json()["model"]
    assert health["task"] == "regression"
    meta = client.get("/v2/models/model").json()
    assert meta["outputs"] == [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
    assert meta["parameters"]["task"] == "regression" and "classes" not in meta["parameters"]
    answer = client.post("/v2/models/model/infer", json={"inputs": _tensors(frame)})
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert {k: output[k] for k in ("name", "datatype", "shape")} == {"name": "prediction", "datatype": "FP64",
                                                                       "shape": [N]}
    np.testing.assert_allclose(output["data"], expected, rtol=1e-12)
    # Answered in binary: n little-endian float64s after the JSON part.
    binary = client.post("/v2/models/model/infer",
                         json={"inputs": _tensors(frame), "outputs": [{"name": "prediction",
                                                                       "parameters": {"binary_data": True}}]})
    assert binary.status_code == 200 and binary.headers["content-type"] == "application/octet-stream"
    head = int(binary.headers["inference-header-content-length"])
    (tensor,) = json.loads(binary.content[:head])["outputs"]
    assert tensor["parameters"]["binary_data_size"] == 8 * N
    np.testing.assert_array_equal(np.frombuffer(binary.content[head:], dtype="<f8"), output["data"])


def test_asking_a_regression_model_for_probabilities_is_a_400_naming_the_output(client, frame):
    for outputs in ([{"name": "probabilities"}], [{"name": "prediction"}, {"name": "probabilities"}]):
        answer = client.post("/v2/models/model/infer", json={"inputs": _tensors(frame), "outputs": outputs})
        assert answer.status_code == 400, answer.text
        (problem,) = answer.json()["problems"]
        assert problem["field"] == "outputs" and "'probabilities'" in problem["message"]
        assert "'probabilities'" in answer.json()["error"]  # what an OIP client shows


def test_the_openapi_document_answers_a_number(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["Prediction"]["required"] == ["prediction"] and schemas["Prediction"]["additionalProperties"] is False
    assert schemas["Prediction"]["properties"]["prediction"]["anyOf"] == [{"type": "number"}, {"type": "null"}]
    outputs = schemas["V2InferRequest"]["properties"]["outputs"]["anyOf"][0]["items"]["properties"]["name"]
    assert outputs["enum"] == ["prediction"]
    one_row = schemas["FeedbackItem"]["oneOf"][0]["properties"]["label"]
    assert one_row["type"] == "number"
    example = spec["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert isinstance(example["one_row"]["value"]["label"], float)


def test_the_request_and_feedback_logs_hold_numbers(bundle_dir, bundle, frame, expected, tmp_path):
    logs = tmp_path / "logs"
    with _client(bundle_dir, logs) as client:
        answer = client.post("/invocations", json={"dataframe_records": frame.to_dict(orient="records")})
        request_id = answer.json()["request_id"]
        labels = [100.5, 80, -3.25, 0, 1e6]
        accepted = client.post("/feedback", json={"request_id": request_id, "labels": labels})
        assert accepted.status_code == 200 and accepted.json() == {"accepted": N}, accepted.text
        refused = client.post("/feedback", json={"request_id": request_id, "row": 0, "label": "12.5"})
        assert refused.status_code == 400 and refused.json()["problems"][0]["field"] == "(body).label"
        assert "not a number" in refused.json()["problems"][0]["message"]
        metrics = client.get("/metrics").text
        assert 'gitml_predicted_rows_total{model="model",model_version="v1"} 5.0' in metrics
        assert "gitml_predicted_class_total{" not in metrics  # no class to count
    logged = read_requests(logs)  # the drift check's reader
    assert list(logged.columns) == request_columns(bundle.signature) == [
        "request_id", "row", "ts", "model_version", *FEATURES, "prediction"]
    assert logged["prediction"].dtype == np.float64
    np.testing.assert_allclose(logged["prediction"].to_numpy(), expected, rtol=1e-12)
    (part,) = sorted((logs / FEEDBACK).rglob("part-*.parquet"))
    assert str(pq.read_schema(part).field("label").type) == "double"
    assert read_log(logs, FEEDBACK)["label"].tolist() == [100.5, 80.0, -3.25, 0.0, 1e6]


def test_the_gate_times_a_regression_bundle_through_the_servers_path(bundle, frame):
    evidence = measure_latency(bundle, bundle, frame, samples=5)
    assert evidence.p95_ms > 0 and evidence.champion_p95_ms is not None and evidence.champion_p95_ms > 0


@pytest.fixture(scope="module")
def live_bundle(tmp_path_factory):
    """The live server's bundle: the torch MLP regression head (float32 inside, float64 answers).

    Not the Ridge: a scikit-learn model refuses an input that standardises past float32's range
    (|x| near 3.4e38 passes the signature) with a 500, for classifiers too; schemathesis finds it.
    """
    return tiny_bundle(tmp_path_factory.mktemp("regression-live") / "bundle", regression=True, family="torch_mlp")


@pytest.fixture(scope="module")
def live(live_bundle, tmp_path_factory):
    """``gitml serve`` over it in a subprocess (one for the module: its start is the slow part)."""
    work = tmp_path_factory.mktemp("regression-live-server")
    server = Server(work, "--bundle", live_bundle, "--log-dir", work / "logs")
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.mark.slow  # a server in a subprocess
@pytest.mark.parametrize("binary", [False, True], ids=["json-tensors", "binary-tensors"])
def test_tritonclient_reads_the_number(live, live_bundle, frame, binary):
    tritonhttp = pytest.importorskip("tritonclient.http")
    expected = load_bundle(live_bundle).predict(frame)["prediction"].to_numpy()
    client = tritonhttp.InferenceServerClient(url=live.url.removeprefix("http://"), network_timeout=30)
    try:
        assert [o["name"] for o in client.get_model_metadata("model")["outputs"]] == ["prediction"]
        inputs = []
        for name in FEATURES:
            tensor = tritonhttp.InferInput(name, [N, 1], "FP64")
            tensor.set_data_from_numpy(frame[[name]].to_numpy(dtype=np.float64), binary_data=binary)
            inputs.append(tensor)
        result = client.infer("model", inputs, outputs=[tritonhttp.InferRequestedOutput("prediction",
                                                                                          binary_data=binary)])
        predicted = result.as_numpy("prediction")
        assert predicted.dtype == np.float64 and predicted.shape == (N,)
        np.testing.assert_allclose(predicted, expected, rtol=1e-12)
        with pytest.raises(tritonhttp.InferenceServerException) as refused:
            client.infer("model", inputs, outputs=[tritonhttp.InferRequestedOutput("probabilities")])
        assert refused.value.status() == "400" and "'probabilities'" in refused.value.message()
    finally:
        client.close()


@pytest.mark.slow  # the live server
def test_simulate_scores_a_regression_model_by_its_mean_absolute_error(live, live_bundle, tmp_path, monkeypatch):
    """`gitml simulate` against a regression server: the labels it posts are numbers and its summary
    is the MAE (here every label is the model's answer plus 1, so exactly 1)."""
    monkeypatch.chdir(tmp_path)  # no params.yaml here: the default target name
    test = rows(40, seed=3)
    test["target"] = load_bundle(live_bundle).predict(test)["prediction"] + 1.0
    test.to_parquet(tmp_path / "test.parquet")
    result = simulate(live.url, batches=2, batch_rows=10, source="test", data_dir=tmp_path)
    assert result.regression and result.failed == 0 and result.errors == []
    assert result.rows == 20 and result.labelled == 20
    assert abs(result.absolute_error / result.rows - 1.0) < 1e-9
    assert "MAE 1.000" in result.summary() and "accuracy" not in result.summary()


@pytest.mark.slow  # the live server, and about 20 s of schemathesis on one core
def test_schemathesis_finds_nothing_on_a_regression_server(live, live_bundle, tmp_path):
    """Every answer of the regression server matches its own OpenAPI document (numbers for
    predictions and labels, one OIP output), as test_real_clients checks for a classifier."""
    report = schemathesis(live.url, live_bundle, tmp_path)
    assert "15 selected / 15 total" in report, report[-3000:]
    if "No issues found" not in report:  # only /feedback's 404s for ids it never saw (see test_real_clients)
        warnings = report.split("WARNINGS")[1].split("SUMMARY")[0]
        assert "Missing test data" in warnings and "- POST /feedback" in warnings, report[-3000:]
