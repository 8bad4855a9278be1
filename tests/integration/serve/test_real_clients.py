"""Real clients against a live `gitml serve`: tritonclient's HTTP client and schemathesis.

tritonclient is the reference Open Inference Protocol v2 client (Triton, KServe): it sends
its infer requests with no Content-Type and, with binary tensors, the
Inference-Header-Content-Length header. Schemathesis calls every route with requests built
from the server's own OpenAPI document and checks each answer against it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from gitml.package.bundle import load_bundle
from tests.integration.serve.bundles import ROOT, TINY, train_bundle
from tests.integration.serve.conftest import SERVE_PARAMS, Server

pytestmark = pytest.mark.slow  # a server in a subprocess over a trained bundle
N_ROWS = 6
HERE = Path(__file__).parent
# Deterministic and bounded (about half a minute on one core): every phase (examples, coverage,
# fuzzing, stateful) over all 15 operations, this many cases per operation, this seed.
ST_EXAMPLES, ST_SEED = 10, 20261202
# Two numeric input columns and one categorical: each kind of column, and one kind twice.
# Schemathesis's coverage phase builds every boundary case of every column: over the serving
# tests' synthetic bundle (8 numeric, 2 categorical) it ran 3,200 cases instead of 1,500, the
# same schema fragments again, for twice the time.
NARROW = ("data=synthetic", "data.source.synthetic.n_rows=800", "data.source.synthetic.n_numeric=2",
          "data.source.synthetic.n_categorical=1")


@dataclass
class Narrow:
    bundle: Path
    params: Path  # params.yaml for that data with quick serve.* settings


@pytest.fixture(scope="module")
def narrow(tmp_path_factory) -> Narrow:
    from gitml.config.compose import compose, write_params

    work = tmp_path_factory.mktemp("narrow")
    bundle = train_bundle(work, NARROW)
    params = write_params(compose(ROOT / "conf", [*TINY, *SERVE_PARAMS, *NARROW]), work / "params.yaml")
    return Narrow(bundle, params)


@pytest.fixture(scope="module")
def server(narrow, tmp_path_factory):
    work = tmp_path_factory.mktemp("real-clients")
    live = Server(work, "--bundle", narrow.bundle, "--log-dir", work / "logs", "--params", narrow.params)
    try:
        yield live.wait_ready()
    finally:
        live.stop()


@pytest.fixture(scope="module")
def rows(narrow) -> pd.DataFrame:
    """Reference rows with numeric columns as FP32 holds them: what the server will see."""
    frame = load_bundle(narrow.bundle).reference().head(N_ROWS).reset_index(drop=True)
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    frame[numeric] = frame[numeric].astype(np.float32).astype(np.float64)
    return frame


@pytest.fixture(scope="module")
def tritonhttp():
    return pytest.importorskip("tritonclient.http")


@pytest.fixture
def triton(server, tritonhttp):
    client = tritonhttp.InferenceServerClient(url=server.url.removeprefix("http://"), network_timeout=30)
    yield client
    client.close()


def triton_inputs(tritonhttp, client, rows: pd.DataFrame, binary: bool) -> list:
    """One tensor per signature column, typed as the model metadata says (FP32 for numbers)."""
    metadata = client.get_model_metadata("model")
    inputs = []
    for spec in metadata["inputs"]:
        name = spec["name"]
        if spec["datatype"] == "BYTES":
            values = np.array([str(v).encode() for v in rows[name]], dtype=np.object_).reshape(-1, 1)
            tensor = tritonhttp.InferInput(name, [len(rows), 1], "BYTES")
        else:
            values = rows[name].to_numpy(dtype=np.float32).reshape(-1, 1)
            tensor = tritonhttp.InferInput(name, [len(rows), 1], "FP32")
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


def test_tritonclient_health_and_metadata(triton, rows):
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("model")
    metadata = triton.get_model_metadata("model")
    kinds = {spec["name"]: spec["datatype"] for spec in metadata["inputs"]}
    assert set(kinds) == set(rows.columns)
    assert {kinds[c] for c in rows.columns if c.startswith("cat_")} == {"BYTES"}
    assert {kinds[c] for c in rows.columns if c.startswith("num_")} <= {"FP64", "FP32"}
    assert [o["name"] for o in metadata["outputs"]] == ["prediction", "probabilities"]


@pytest.mark.parametrize("binary", [False, True], ids=["json-tensors", "binary-tensors"])
def test_tritonclient_infer_agrees_with_the_bundle(tritonhttp, triton, rows, narrow, binary):
    expected = load_bundle(narrow.bundle).predict(rows)
    outputs = [tritonhttp.InferRequestedOutput("prediction", binary_data=binary),
               tritonhttp.InferRequestedOutput("probabilities", binary_data=binary)]
    result = triton.infer("model", triton_inputs(tritonhttp, triton, rows, binary), outputs=outputs, request_id="triton-1")
    answer = result.get_response()
    assert answer["model_name"] == "model" and answer["id"] == "triton-1"
    predicted = [p.decode() if isinstance(p, bytes) else str(p) for p in result.as_numpy("prediction").ravel()]
    assert predicted == [str(p) for p in expected["prediction"]]
    proba = result.as_numpy("probabilities")
    classes = [c.removeprefix("proba_") for c in expected.columns if c.startswith("proba_")]
    assert proba.shape == (N_ROWS, len(classes))
    np.testing.assert_allclose(proba, expected[[f"proba_{c}" for c in classes]].to_numpy(), atol=1e-6)


def test_tritonclient_shows_the_servers_refusal(tritonhttp, triton, rows):
    """A refused request reaches the user as the server's message, under OIP's `error` key."""
    inputs = triton_inputs(tritonhttp, triton, rows, binary=False)
    wrong = next(i for i in inputs if i.name() == "cat_0")
    bad = tritonhttp.InferInput("cat_0", [N_ROWS, 1], "FP32")
    bad.set_data_from_numpy(np.zeros((N_ROWS, 1), dtype=np.float32))
    with pytest.raises(tritonhttp.InferenceServerException) as refused:
        triton.infer("model", [bad if i is wrong else i for i in inputs])
    assert refused.value.status() == "400"
    assert "FP32" in refused.value.message() and "BYTES" in refused.value.message()
    with pytest.raises(tritonhttp.InferenceServerException) as missing:
        triton.get_model_metadata("other")
    assert missing.value.status() == "404" and "serves 'model'" in missing.value.message()


def schemathesis(url: str, bundle: Path, cwd: Path, *options: str) -> str:
    """Run `st run --checks all` against ``url`` (deterministic, bounded); its report, asserted clean."""
    st = Path(sys.executable).parent / "st"
    if not st.exists():
        pytest.skip("schemathesis is not installed (the dev extra installs it)")
    path = os.pathsep.join(filter(None, [str(HERE.parents[2]), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "GITML_ST_BUNDLE": str(bundle), "PYTHONPATH": path,
           "SCHEMATHESIS_HOOKS": str(HERE / "schemathesis_hooks.py")}
    result = subprocess.run(
        [str(st), "--config-file", str(HERE / "schemathesis.toml"), "--no-color", "run",
         f"{url}/openapi.json", "--checks", "all", "--max-examples", str(ST_EXAMPLES),
         "--seed", str(ST_SEED), "--workers", "1", "--generation-database", "none",
         "--request-timeout", "30", *options],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=540)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-12_000:]
    # No failure and no error; a warning (e.g. "missing test data") is asserted on by the caller.
    assert re.search(r"=+ (No issues found|\d+ warnings?) in [\d.]+s =+", report), report[-4_000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", report)
    assert generated and int(generated[1]) == int(generated[2]) > 0, report[-4_000:]
    return report


def test_schemathesis_finds_nothing(server, narrow, tmp_path):
    """Every answer matches the server's own OpenAPI document: status codes, bodies, headers;
    requests the document allows are served and requests it forbids are refused."""
    report = schemathesis(server.url, narrow.bundle, tmp_path)
    assert "15 selected / 15 total" in report, report[-3000:]
    # /feedback answers 404 to a request id this server never issued (the documented rule), so
    # depending on how many fuzzed /invocations succeed first, schemathesis may warn that it
    # "repeatedly returned 404": the one warning allowed, and only for that operation.
    if "No issues found" not in report:
        warnings = report.split("WARNINGS")[1].split("SUMMARY")[0]
        assert "Missing test data" in warnings and "- POST /feedback" in warnings, report[-3000:]
        assert len(re.findall(r"^\s+- (GET|POST|PUT|DELETE) ", warnings, re.M)) == 1, report[-3000:]
    assert int(re.search(r"(\d+) generated", report)[1]) > 1_000  # it really ran every phase


def test_schemathesis_finds_nothing_on_feedback_behind_a_token(narrow, tmp_path, start_server, monkeypatch):
    """With serve.feedback_token_env set, the document declares the bearer scheme on /feedback,
    and a request without the token is refused (schemathesis's ignored_auth check)."""
    monkeypatch.setenv("GITML_FEEDBACK_TOKEN", "s3cret-real-clients")
    guarded = start_server(tmp_path, "--bundle", narrow.bundle, "--log-dir", tmp_path / "logs",
                           "--params", narrow.params)
    spec = httpx.get(f"{guarded.url}/openapi.json").json()
    assert spec["paths"]["/feedback"]["post"]["security"] == [{"feedbackToken": []}]
    assert spec["components"]["securitySchemes"]["feedbackToken"]["scheme"] == "bearer"
    assert httpx.post(f"{guarded.url}/feedback", json={"request_id": "r1", "label": 1}).status_code == 401
    report = schemathesis(guarded.url, narrow.bundle, tmp_path, "--include-path", "/feedback",
                          "-H", "Authorization: Bearer s3cret-real-clients")
    # Alone, /feedback sees no request id this server answered: every label is a 404 (a warning).
    assert "1 selected / 15 total" in report
