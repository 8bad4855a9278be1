"""The app in-process over a tiny bundle whose contract excludes a date and an id.

Rows sent as the source data has them (with the date and id) are answered as rows
without them, in every format; a truly unknown column is still a 400. The OpenAPI
document lists the excluded columns as optional, ignored properties; OIP metadata keeps
them out of its inputs and names them under parameters.ignored_inputs.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pyarrow as pa
import pytest

from gitml.config.schema import ServeConfig
from gitml.serve.app import create_app
from gitml.serve.formats import ARROW_STREAM, arrow_stream
from gitml.serve.state import ServeSettings, ServeState
from tests.tiny_bundles import FEATURES, rows, tiny_bundle, with_excluded

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

EXCLUDED = ["signup_date", "customer_id"]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    work = tmp_path_factory.mktemp("excluded-serve")
    bundle = tiny_bundle(work / "bundle", excluded=True)
    config = ServeConfig(log_dir=str(work / "logs"), log_flush_seconds=60)
    with TestClient(create_app(ServeState(ServeSettings(bundle=str(bundle), cfg=config))),
                    raise_server_exceptions=False) as test_client:
        yield test_client


def _bodies(frame: pd.DataFrame) -> dict[str, dict]:
    records = frame.to_dict(orient="records")
    mixed = [{k: v for k, v in r.items() if k != "customer_id" or i % 2} for i, r in enumerate(records)]
    return {
        "dataframe_split": {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}},
        "dataframe_records": {"dataframe_records": records},
        "instances_mixed_keys": {"instances": mixed},
        "inputs_columns": {"inputs": {c: frame[c].tolist() for c in frame.columns}},
    }


def test_rows_with_the_date_and_id_get_the_answers_of_rows_without(client):
    plain = rows(6, seed=4)
    expected = client.post("/invocations", json={"dataframe_records": plain.to_dict(orient="records")})
    assert expected.status_code == 200, expected.text
    want = expected.json()["predictions"]
    full = with_excluded(plain)
    answers = {name: client.post("/invocations", json=body) for name, body in _bodies(full).items()}
    answers["csv"] = client.post("/invocations", content=full.to_csv(index=False), headers={"content-type": "text/csv"})
    answers["arrow"] = client.post("/invocations", content=arrow_stream(pa.Table.from_pandas(full)),
                                   headers={"content-type": ARROW_STREAM})
    for name, answer in answers.items():
        assert answer.status_code == 200, (name, answer.text)
        assert answer.json()["predictions"] == want, name


def test_a_truly_unknown_column_is_still_refused(client):
    full = with_excluded(rows(2)).assign(surprise=1.0)
    for body in (_bodies(full)["dataframe_records"], _bodies(full)["instances_mixed_keys"]):
        answer = client.post("/invocations", json=body)
        assert answer.status_code == 400, answer.text
        assert [p["field"] for p in answer.json()["problems"]] == ["surprise"]


def test_oip_takes_and_ignores_excluded_tensors_and_its_metadata_names_them_apart(client):
    name = client.get("/health").json()["model"]["name"]
    meta = client.get(f"/v2/models/{name}").json()
    assert [t["name"] for t in meta["inputs"]] == FEATURES
    assert [c["name"] for c in meta["parameters"]["ignored_inputs"]] == EXCLUDED
    full = with_excluded(rows(3))
    tensors = [{"name": c, "shape": [3], "datatype": "BYTES" if c in EXCLUDED else "FP64", "data": full[c].tolist()}
               for c in full.columns]
    answer = client.post(f"/v2/models/{name}/infer", json={"inputs": tensors})
    plain = client.post(f"/v2/models/{name}/infer", json={"inputs": [t for t in tensors if t["name"] in FEATURES]})
    assert answer.status_code == plain.status_code == 200, answer.text
    assert answer.json()["outputs"] == plain.json()["outputs"]
    odd = client.post(f"/v2/models/{name}/infer", json={"inputs": [*tensors, {**tensors[0], "name": "surprise"}]})
    assert odd.status_code == 400


def test_the_openapi_document_lists_them_as_optional_and_ignored(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    row = schemas["InputRow"]
    assert set(EXCLUDED) <= set(row["properties"]) and not set(EXCLUDED) & set(row["required"])
    assert all(row["properties"][c]["description"].startswith("ignored") for c in EXCLUDED)
    tensors = schemas["V2InferRequest"]["properties"]["inputs"]
    assert tensors["minItems"] == len(FEATURES) and tensors["maxItems"] == len(FEATURES) + len(EXCLUDED)
