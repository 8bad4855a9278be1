"""Several models in one server: routing by name, per-model logs and feedback, lazy loading and
eviction (in-process), and one model swapping under traffic to all of them (a real server)."""

from __future__ import annotations

import contextlib
import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from gitml.config.schema import ServeConfig
from gitml.errors import GitmlError
from gitml.monitor.logs import read_requests
from gitml.serve.app import create_app
from gitml.serve.deployment import publish
from gitml.serve.requestlog import read_log
from gitml.serve.slots import named_sources
from gitml.serve.state import ServeSettings, ServeState
from tests.integration.serve.load import Load, wait_for_metric, wait_for_swap
from tests.tiny_bundles import FEATURES, tiny_bundle

# churn predicts x0 > 0, fraud x1 > 0, price a number: these rows tell them apart.
RECORDS = [{"x0": 2.0, "x1": -2.0, "x2": 0.0, "x3": 0.0}, {"x0": -2.0, "x1": 2.0, "x2": 0.0, "x3": 0.0}]
V2_BODY = {"inputs": [{"name": c, "shape": [2], "datatype": "FP64", "data": [r[c] for r in RECORDS]}
                      for c in FEATURES]}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("several")
    return {"churn": tiny_bundle(root / "churn", version="v1", rule=0),
            "fraud": tiny_bundle(root / "fraud", version="v7", rule=1),
            "price": tiny_bundle(root / "price", version="v3", regression=True),
            "fraud-v8": tiny_bundle(root / "fraud-v8", version="v8", rule=0)}


def state_for(bundles, log_dir, **cfg) -> ServeState:
    models = [[name, "bundle", str(bundles[name])] for name in ("churn", "fraud", "price")]
    return ServeState(ServeSettings(models=models, cfg=ServeConfig(log_dir=str(log_dir), **cfg)))


def invoke(client, model: str | None = None) -> httpx.Response:
    return client.post("/invocations", json={"dataframe_records": RECORDS},
                       headers={"x-gitml-model": model} if model else {})


def test_each_name_reaches_its_model_and_logs_apart(bundles, tmp_path):
    logs = tmp_path / "logs"
    with TestClient(create_app(state_for(bundles, logs))) as client:
        fraud = client.post("/v2/models/fraud/infer", json=V2_BODY).json()
        assert (fraud["model_name"], fraud["model_version"]) == ("fraud", "v7")
        assert fraud["outputs"][0]["data"] == ["0", "1"]  # x1 > 0
        price = client.post("/v2/models/price/versions/v3/infer", json=V2_BODY).json()
        assert [o["name"] for o in price["outputs"]] == ["prediction"]
        assert client.get("/v2/models/churn").json()["name"] == "churn"
        assert client.get("/v2/models/fraud/versions/v1/ready").status_code == 404
        unknown = client.post("/v2/models/nope/infer", json=V2_BODY)
        assert unknown.status_code == 404 and "'churn' version 'v1', 'fraud' version 'v7'" in unknown.json()["error"]

        default = invoke(client)  # the first given
        assert default.headers["x-model-version"] == "v1"
        assert [p["prediction"] for p in default.json()["predictions"]] == [1, 0]  # x0 > 0
        named = invoke(client, "fraud")
        assert [p["prediction"] for p in named.json()["predictions"]] == [0, 1]
        assert isinstance(invoke(client, "price").json()["predictions"][0]["prediction"], float)
        missing = invoke(client, "nope")
        assert missing.status_code == 404 and missing.json()["problems"][0]["field"] == "x-gitml-model"

        # Feedback goes to the model that answered (the same header); another model does not know the id.
        labels = {"request_id": named.headers["x-request-id"], "labels": [0, 1]}
        assert client.post("/feedback", json=labels).status_code == 404
        assert client.post("/feedback", json=labels, headers={"x-gitml-model": "fraud"}).status_code == 200

        version = client.get("/version").json()
        assert version["name"] == "churn" and list(version["models"]) == ["churn", "fraud", "price"]
        assert version["models"]["price"]["model_version"] == "v3"
        metrics = client.get("/metrics").text
        assert 'gitml_predicted_rows_total{model="fraud",model_version="v7"} 4.0' in metrics
        assert 'gitml_model_reloads_total{model="price"} 0.0' in metrics
    # Each model logs under LOG_DIR/NAME/ (the drift check reads one such folder), nothing at the top.
    assert sorted(p.name for p in logs.iterdir()) == ["churn", "fraud", "price"]
    assert len(read_requests(logs / "churn")) == 2 and set(read_requests(logs / "fraud")["model_version"]) == {"v7"}
    assert len(read_requests(logs / "price")) == 4
    assert len(read_log(logs / "fraud", "feedback")) == 2 and not (logs / "churn" / "feedback").exists()


def test_lazy_loading_and_eviction_keep_at_most_the_bound(bundles, tmp_path):
    state = state_for(bundles, tmp_path / "logs", lazy_load=True, max_loaded_models=1)

    def loaded() -> list[str]:
        return [name for name, slot in state.models.slots.items() if slot.loaded]

    def writing() -> list[str]:  # log writer threads run for the models used, not each one named
        return [name for name, slot in state.models.slots.items() if slot.request_log.running]

    assert loaded() == []
    with TestClient(create_app(state)) as client:
        assert client.get("/v2/health/ready").json() == {"ready": True}
        assert client.get("/v2/models/fraud/ready").json() == {"name": "fraud", "ready": True} and loaded() == []
        assert writing() == []
        assert invoke(client, "fraud").status_code == 200 and loaded() == ["fraud"] and writing() == ["fraud"]
        assert client.post("/v2/models/price/infer", json=V2_BODY).status_code == 200 and loaded() == ["price"]
        again = invoke(client, "fraud")  # evicted, so loaded again
        assert again.status_code == 200 and again.headers["x-model-version"] == "v7" and loaded() == ["fraud"]
        assert writing() == ["fraud", "price"]  # an evicted model keeps writing what it logged
        assert client.get("/version").json()["models"]["price"] == {"loaded": False}
        info = {line.split('name="')[1].split('"')[0]: line.rsplit(" ", 1)[1]
                for line in client.get("/metrics").text.splitlines() if line.startswith("gitml_model_info{")}
        assert info == {"fraud": "1.0", "price": "0.0"}  # loaded or not


def test_names_and_sources_are_checked(bundles, tmp_path):
    for bundle_args, deployments, stage, models, words in [
        (["a=x", "./b=y"], [], None, [], "not a bare --bundle"),
        (["x", "y"], [], None, [], "name each"),
        ([], [], None, ["churn"], "give --stage too"),
        (["a=x"], [], "prod", [], "not a bare --stage"),
    ]:
        with pytest.raises(GitmlError, match=words):
            named_sources(bundle_args, deployments, stage, models)
    assert named_sources(["a=x"], ["b=s3://bucket/b"], "prod", ["c"]) == (
        {}, [["a", "bundle", "x"], ["b", "deployment", "s3://bucket/b"], ["c", "stage", "prod"]])
    assert named_sources(["models/bundle"], [], None, []) == ({"bundle": "models/bundle"}, [])
    for models, default, words in [([["a", "bundle", "x"], ["a", "bundle", "y"]], "", "'a' is given twice"),
                                   ([["-a", "bundle", "x"]], "", "'-a' is not a model name"),
                                   ([["a", "bundle", "x"], ["a/b", "bundle", "y"]], "", "would hold the logs"),
                                   ([["a", "bundle", "x"]], "b", "serve.default_model 'b'")]:
        with pytest.raises(GitmlError, match=words):
            ServeSettings(models=models, cfg=ServeConfig(default_model=default))
    stage = ServeSettings(models=[["churn", "stage", "prod"], ["fraud", "bundle", "x"]]).source("churn")
    try:  # each --model follows its own registry stage (the lookup itself: tests/integration/serve/test_stage_follow.py)
        assert stage.describe() == "registry churn#prod in ."
    finally:
        stage.close()
    with pytest.raises(GitmlError, match="missing"):  # one model that cannot load: the server does not start
        ServeState(ServeSettings(models=[["churn", "bundle", str(bundles["churn"])],
                                         ["gone", "bundle", str(tmp_path / "missing")]]))
    fraud_first = state_for(bundles, tmp_path / "logs", default_model="fraud")
    with TestClient(create_app(fraud_first)) as client:
        assert invoke(client).headers["x-model-version"] == "v7"


@pytest.mark.slow
def test_one_model_swaps_under_traffic_to_all_with_no_failed_request(bundles, tmp_path, start_server):
    """Two workers, three models (two followed deployments, one bundle); fraud is republished."""
    churn, fraud = tmp_path / "deploy-churn", tmp_path / "deploy-fraud"
    publish(bundles["churn"], churn, "v1")
    publish(bundles["fraud"], fraud, "v7")
    params = tmp_path / "params.yaml"
    params.write_text("serve:\n  follow_interval_seconds: 0.2\n  log_flush_seconds: 0.5\n")
    server = start_server(tmp_path, "--deployment", f"churn={churn}", "--deployment", f"fraud={fraud}",
                          "--bundle", f"price={bundles['price']}", "--follow", "--workers", "2",
                          "--log-dir", tmp_path / "logs", "--params", params)
    sends = {"churn": lambda client, *_: invoke(client, "churn"), "fraud": lambda client, *_: invoke(client, "fraud"),
             "price": lambda client, *_: client.post("/v2/models/price/infer", json=V2_BODY)}
    loads = {name: Load(server.url, send, clients=2) for name, send in sends.items()}
    with contextlib.ExitStack() as running:
        for load in loads.values():
            running.enter_context(load)
        time.sleep(0.5)
        publish(bundles["fraud-v8"], fraud, "v8")
        wait_for_swap(loads["fraud"], "v8", "fraud")
        time.sleep(0.3)
    errors = [f"{name}: {error}" for name, load in loads.items() for error in load.errors]
    assert not errors, errors[:5]
    assert set(loads["churn"].versions) == {"v1"} and set(loads["price"].versions) == {"v3"}
    assert loads["fraud"].versions[0] == "v7" and loads["fraud"].versions[-1] == "v8"
    assert min(len(load.answers) for load in loads.values()) > 20
    # The reference OIP client addresses each model by name.
    tritonhttp = pytest.importorskip("tritonclient.http")
    triton = tritonhttp.InferenceServerClient(url=server.url.removeprefix("http://"), network_timeout=30)
    inputs = []
    for column in FEATURES:
        tensor = tritonhttp.InferInput(column, [len(RECORDS)], "FP64")
        tensor.set_data_from_numpy(np.array([r[column] for r in RECORDS]))
        inputs.append(tensor)
    assert triton.is_model_ready("fraud") and triton.get_model_metadata("price")["versions"] == ["v3"]
    assert triton.infer("fraud", inputs).as_numpy("prediction").tolist() == [b"1", b"0"]  # v8 follows x0
    # Once in each worker: the 20 answers above may all come from one worker's connections.
    metrics = wait_for_metric(server.url, 'gitml_model_reloads_total{model="fraud"} 2.0')
    assert 'gitml_model_reloads_total{model="churn"} 0.0' in metrics
    assert server.stop() == 0
    logged = {name: set(read_requests(tmp_path / "logs" / name)["model_version"]) for name in loads}
    assert logged == {"churn": {"v1"}, "fraud": {"v7", "v8"}, "price": {"v3"}}
