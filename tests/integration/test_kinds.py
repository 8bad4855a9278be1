"""Data set (a) by configuration alone: a date, a boolean, 3-5% nulls, a 50-level and a
700-level category, an id and an imbalanced binary label (tests/kinds_data.py) go from
`gitml schema infer` and a data=csv config through `dvc repro` to `gitml predict` on rows
dated after the training range and to served answers in each request format.

No gate override: the default gate (beat a dummy model, no absolute thresholds) fits it.
"""

from __future__ import annotations

import json
import struct

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from gitml.data.sources import snake_case
from tests.conftest import TINY_OVERRIDES, copy_project, run
from tests.integration.serve.conftest import start_server  # noqa: F401 (a fixture)
from tests.kinds_data import dataset_a, future_rows

pytestmark = pytest.mark.slow

CONFIG = (
    "data=csv", "data.name=kinds", "data.target=churned", "data.source.path=data/external/kinds.csv",
    "data.source.label=Churned", "data.schema.path=data/external/kinds.schema.yaml", "data.slices=[]",
    "data.preprocess.max_levels=30", "data.preprocess.missing_indicator=true",
    "data.preprocess.categorical_impute=missing_level", "model=logreg",
)


def bytes_tensor(values: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def test_dataset_a_from_inference_to_served_answers(fresh_template, tmp_path, start_server):  # noqa: F811
    project = copy_project(fresh_template, tmp_path / "project")
    dataset_a().to_csv(project / "data/external/kinds.csv", index=False)
    run("gitml", "schema", "infer", "data/external/kinds.csv", "-o", "data/external/kinds.schema.yaml",
        "--label", "Churned", cwd=project)
    contract = yaml.safe_load((project / "data/external/kinds.schema.yaml").read_text())
    assert contract["columns"]["signup_date"]["dtype"] == "datetime"
    assert contract["columns"]["city"]["open"] is True and len(contract["columns"]["city"]["categories"]) == 50
    assert list(contract["excluded"]) == ["customer_id"]

    run("gitml", "config", "compose", *CONFIG, *TINY_OVERRIDES, cwd=project)
    run("dvc", "repro", cwd=project)
    summary = json.loads((project / "reports/data.json").read_text())
    # 3 numeric/bool + 5 date parts + 4 missing indicators + store 30+other+missing + city 30+other+missing
    assert summary["features"] == {"columns": 6, "encoded": 3 + 5 + 4 + 32 + 32}
    gate = json.loads((project / "reports/gate.json").read_text())
    assert gate["verdict"] == "pass", [r for r in gate["rules"] if r["verdict"] != "pass"]

    # As the source has them (the id, dates after training, unseen cities), with the pipeline's
    # column names: ingest snake_cases a source's names, predict and the server take them as they are.
    later = future_rows(20).rename(columns=snake_case)
    later.to_csv(tmp_path / "later.csv", index=False)
    run("gitml", "predict", tmp_path / "later.csv", "-o", tmp_path / "scored.csv", cwd=project)
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert len(scored) == 20 and set(scored["prediction"]) <= {"no", "yes"}

    server = start_server(project, "--bundle", "models/bundle")
    rows = later
    records = json.loads(rows.to_json(orient="records"))  # ISO date text, null where missing
    answers = [httpx.post(f"{server.url}/invocations", json={"dataframe_records": records}, timeout=30),
               httpx.post(f"{server.url}/invocations", content=rows.to_csv(index=False),
                          headers={"content-type": "text/csv"}, timeout=30)]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert [p["prediction"] for p in answer.json()["predictions"]] == scored["prediction"].tolist()

    complete = rows.dropna().head(3)
    inputs = []
    for name, values in complete.drop(columns=["customer_id"]).items():
        if name in ("signup_date", "store", "city"):
            inputs.append({"name": name, "shape": [3], "datatype": "BYTES", "data": values.tolist()})
        elif name == "newsletter":
            inputs.append({"name": name, "shape": [3], "datatype": "BOOL", "data": values.astype(bool).tolist()})
        else:
            inputs.append({"name": name, "shape": [3], "datatype": "FP64", "data": values.astype(float).tolist()})
    v2 = httpx.post(f"{server.url}/v2/models/model/infer", json={"inputs": inputs}, timeout=30)
    assert v2.status_code == 200, v2.text
    expected = scored.loc[complete.index, "prediction"].tolist()
    assert next(o for o in v2.json()["outputs"] if o["name"] == "prediction")["data"] == expected

    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    row = document["components"]["schemas"]["InputRow"]["properties"]
    assert "pattern" in row["signup_date"]["anyOf"][0] and "enum" not in row["city"]
    refused = httpx.post(f"{server.url}/invocations", json={"dataframe_records": [{**records[0], "signup_date": "soon"}]},
                         timeout=30)
    assert refused.status_code == 400 and "expected a date" in refused.text
    assert np.isfinite(scored.filter(like="proba_").to_numpy()).all()
