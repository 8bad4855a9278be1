"""Binary bodies for large batches: Arrow IPC streams on /invocations and the OIP v2 binary
tensor data extension, in and out, with the same validation as JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gitml.package.bundle import load_bundle
from gitml.serve.formats import arrow_stream
from gitml.serve.requestlog import read_log
from tests.integration.serve.test_app import make_client

ARROW = "application/vnd.apache.arrow.stream"


@pytest.fixture(scope="module")
def bundle(trained):
    return load_bundle(trained.synthetic)


@pytest.fixture(scope="module")
def rows(bundle) -> pd.DataFrame:
    return pd.concat([bundle.reference()] * 3, ignore_index=True).head(300)


@pytest.fixture(scope="module")
def client(trained, tmp_path_factory):
    logs = tmp_path_factory.mktemp("binary-logs")
    with make_client(trained.synthetic, logs, max_batch_rows=500) as test_client:
        test_client.logs = logs
        yield test_client


def binary_infer(frame: pd.DataFrame, numeric: str = "FP64", json_columns: tuple[str, ...] = (),
                 **parameters) -> tuple[bytes, dict[str, str]]:
    """An OIP infer request as tritonclient sends one: JSON header, then each binary tensor's bytes."""
    header: dict = {"inputs": [], "parameters": parameters}
    blobs = []
    for name in frame.columns:
        column = frame[name]
        if name in json_columns:
            kind = "BYTES" if column.dtype == object else "FP64"
            header["inputs"].append({"name": name, "shape": [len(frame)], "datatype": kind, "data": column.tolist()})
            continue
        if column.dtype == object:
            blob, kind = b"".join(len(v).to_bytes(4, "little") + v for v in (s.encode() for s in column)), "BYTES"
        else:
            dtype = {"FP64": "<f8", "FP32": "<f4"}[numeric]
            blob, kind = column.to_numpy(dtype=dtype).tobytes(), numeric
        header["inputs"].append({"name": name, "shape": [len(frame)], "datatype": kind,
                                 "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    head = json.dumps(header).encode()
    return head + b"".join(blobs), {"inference-header-content-length": str(len(head)),
                                    "content-type": "application/octet-stream"}


def split_answer(response) -> tuple[dict, dict[str, bytes]]:
    """The JSON part of a binary infer answer and each binary output's bytes, by name."""
    size = int(response.headers["inference-header-content-length"])
    doc, rest, blobs = json.loads(response.content[:size]), response.content[size:], {}
    for output in doc["outputs"]:
        length = output.get("parameters", {}).get("binary_data_size")
        if length is not None:
            blobs[output["name"]], rest = rest[:length], rest[length:]
    assert rest == b""
    return doc, blobs


def bytes_elements(blob: bytes) -> list[str]:
    out, position = [], 0
    while position < len(blob):
        size = int.from_bytes(blob[position:position + 4], "little")
        out.append(blob[position + 4:position + 4 + size].decode())
        position += 4 + size
    return out


def test_arrow_stream_in_arrow_or_json_out_agrees_with_the_bundle(client, bundle, rows):
    expected = bundle.predict(rows)
    table = pa.Table.from_pandas(rows, preserve_index=False)
    table = table.set_column(table.schema.get_field_index("cat_0"), "cat_0",  # a pandas categorical
                             pa.array(rows["cat_0"]).dictionary_encode())
    body = arrow_stream(table, max_chunksize=64)  # several record batches
    answer = client.post("/invocations", content=body, headers={"content-type": ARROW, "accept": ARROW})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == ARROW
    out = pa.ipc.open_stream(answer.content).read_all()
    assert out.schema.metadata[b"model_version"].decode() == answer.headers["x-model-version"]
    assert out.schema.metadata[b"request_id"].decode() == answer.headers["x-request-id"]
    frame = out.to_pandas()
    assert list(frame.columns) == ["prediction", "proba_0", "proba_1"]
    assert frame["prediction"].tolist() == expected["prediction"].tolist()
    assert np.abs(frame["proba_1"].to_numpy() - expected["proba_1"].to_numpy()).max() < 1e-6
    as_json = client.post("/invocations", content=body, headers={"content-type": ARROW})
    assert as_json.headers["content-type"] == "application/json"
    assert [p["prediction"] for p in as_json.json()["predictions"]] == expected["prediction"].tolist()


def test_arrow_refusals_name_the_column(client, rows):
    bad = pa.Table.from_pandas(rows.head(5), preserve_index=False)
    bad = bad.set_column(bad.schema.get_field_index("num_1"), "num_1", pa.array([True] * 5))
    bad = bad.append_column("extra", pa.array([1.0] * 5)).drop_columns(["num_2"])
    bad = bad.set_column(bad.schema.get_field_index("cat_1"), "cat_1", pa.array(["zebra"] * 5))
    response = client.post("/invocations", content=arrow_stream(bad), headers={"content-type": ARROW})
    assert response.status_code == 400
    problems = {p["field"]: p["message"] for p in response.json()["problems"]}
    assert problems["num_1"].startswith("expected a number") and problems["num_2"] == "missing column"
    assert problems["extra"].startswith("unexpected column") and "'zebra'" in problems["cat_1"]
    nested = pa.Table.from_pandas(rows.head(2), preserve_index=False)
    nested = nested.set_column(0, nested.column_names[0], pa.array([[1.0], [2.0]]))
    response = client.post("/invocations", content=arrow_stream(nested), headers={"content-type": ARROW})
    assert response.status_code == 400 and "cannot hold" in response.json()["problems"][0]["message"]
    for body in (b"", b"\xff" * 64, arrow_stream(nested)[:100]):
        response = client.post("/invocations", content=body, headers={"content-type": ARROW})
        assert response.status_code == 400 and "Arrow" in response.json()["message"], response.text
    empty = pa.Table.from_pandas(rows.head(0), preserve_index=False)
    response = client.post("/invocations", content=arrow_stream(empty), headers={"content-type": ARROW})
    assert response.status_code == 400 and "empty batch" in response.text


@pytest.mark.parametrize("numeric", ["FP64", "FP32"])
def test_v2_binary_tensors_in_and_out(client, bundle, rows, numeric):
    expected = bundle.predict(rows)
    body, headers = binary_infer(rows, numeric, binary_data_output=True)
    response = client.post("/v2/models/model/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    doc, blobs = split_answer(response)
    assert doc["model_version"] == response.headers["x-model-version"]
    assert bytes_elements(blobs["prediction"]) == [str(p) for p in expected["prediction"]]
    proba = np.frombuffer(blobs["probabilities"], dtype="<f8").reshape(len(rows), 2)
    assert np.abs(proba[:, 1] - expected["proba_1"].to_numpy()).max() < (1e-6 if numeric == "FP64" else 1e-4)
    outputs = {o["name"]: o for o in doc["outputs"]}
    assert outputs["probabilities"]["shape"] == [len(rows), 2] and "data" not in outputs["probabilities"]


def test_v2_binary_mixes_with_json_tensors_and_outputs(client, bundle, rows):
    """Some inputs as JSON data, some binary; only the output asked for comes back binary."""
    expected = bundle.predict(rows.head(20))
    body, headers = binary_infer(rows.head(20), json_columns=("num_3", "cat_1"))
    header = json.loads(body[:int(headers["inference-header-content-length"])])
    header["outputs"] = [{"name": "prediction"}, {"name": "probabilities", "parameters": {"binary_data": True}}]
    head = json.dumps(header).encode()
    body = head + body[int(headers["inference-header-content-length"]):]
    response = client.post("/v2/models/model/infer", content=body,
                           headers={**headers, "inference-header-content-length": str(len(head))})
    assert response.status_code == 200, response.text
    doc, blobs = split_answer(response)
    outputs = {o["name"]: o for o in doc["outputs"]}
    assert outputs["prediction"]["data"] == [str(p) for p in expected["prediction"]]
    assert set(blobs) == {"probabilities"}
    json_only, _ = binary_infer(rows.head(3))  # binary in, JSON out: no output asked for in binary
    response = client.post("/v2/models/model/infer", content=json_only,
                           headers=binary_infer(rows.head(3))[1])
    assert response.headers["content-type"] == "application/json" and "data" in response.json()["outputs"][0]
    assert "binary_tensor_data" in client.get("/v2").json()["extensions"]


def test_v2_binary_refusals_name_the_tensor(client, rows):
    body, headers = binary_infer(rows.head(4))
    size = int(headers["inference-header-content-length"])
    header = json.loads(body[:size])
    header["inputs"][0]["parameters"]["binary_data_size"] -= 8  # num_0 short by one value
    head = json.dumps(header).encode()
    response = client.post("/v2/models/model/infer", content=head + body[size:],
                           headers={**headers, "inference-header-content-length": str(len(head))})
    assert response.status_code == 400
    problems = {p["field"]: p["message"] for p in response.json()["problems"]}
    assert "4 FP64 value(s) take 32" in problems["num_0"]
    assert "the body holds" in problems["(body)"]  # the 8 bytes nobody claimed
    # Every tensor after num_0 read shifted bytes: refused with the others, nothing crashed.
    for length in ("abc", str(len(body) + 1), "-1"):
        response = client.post("/v2/models/model/infer", content=body,
                               headers={**headers, "inference-header-content-length": length})
        assert response.status_code == 400
        assert response.json()["problems"][0]["field"] == "Inference-Header-Content-Length"
    bad_utf8 = rows.head(4).copy()
    body, headers = binary_infer(bad_utf8)
    body = body.replace(b"\x01\x00\x00\x00" + bad_utf8["cat_0"].iloc[0].encode(), b"\x01\x00\x00\x00\xff", 1)
    response = client.post("/v2/models/model/infer", content=body, headers=headers)
    assert response.status_code == 400 and "UTF-8" in response.text
    response = client.post("/v2/models/model/infer", content=body, headers={**headers, "content-type": "text/csv"})
    assert response.status_code == 415


def test_binary_requests_are_logged_like_any_other(client, rows):
    before = client.post("/invocations", content=arrow_stream(pa.Table.from_pandas(rows.head(7), preserve_index=False)),
                         headers={"content-type": ARROW}).headers["x-request-id"]
    body, headers = binary_infer(rows.head(5), binary_data_output=True)
    after = client.post("/v2/models/model/infer", content=body, headers=headers).headers["x-request-id"]
    client.app.state.gitml.request_log.flush()
    log = read_log(client.logs)
    assert (log["request_id"] == before).sum() == 7 and (log["request_id"] == after).sum() == 5
    logged = log[log["request_id"] == after].sort_values("row")
    assert logged["cat_0"].tolist() == rows.head(5)["cat_0"].tolist()
    assert np.allclose(logged["num_0"].to_numpy(), rows.head(5)["num_0"].to_numpy())


def test_openapi_documents_the_binary_bodies(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert ARROW in paths["/invocations"]["post"]["requestBody"]["content"]
    assert "application/octet-stream" in paths["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]
