"""Data sets (a) and (b) of issue 14 by configuration alone (tests/kinds_data.py): each goes
from `gitml schema infer` and a data=csv config through one `dvc repro` to `gitml predict` on
rows dated after the training range and to served answers in each request format.

(a): a date, a boolean, 3-5% nulls, a 50-level and a 700-level category, an id and an
imbalanced binary label. (b): three string classes (bronze, silver, gold; 55/30/15), an int
with nulls, a date, a boolean, an order reference, the label between the features.
No gate override: the default gate (beat a dummy model, no absolute thresholds) fits both.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from gitml.config.schema import ServeConfig
from gitml.data.sources import snake_case
from gitml.serve.app import create_app
from gitml.serve.state import ServeSettings, ServeState
from gitml.serve.tabular import ARROW_CSV_BYTES
from tests.conftest import TINY_OVERRIDES, copy_project, run
from tests.integration.serve.conftest import start_server  # noqa: F401 (a fixture)
from tests.kinds_data import TIERS, dataset_a, dataset_b, future_rows, future_rows_b

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.slow

CONFIG = (
    "data.slices=[]", "data.preprocess.max_levels=30", "data.preprocess.missing_indicator=true",
    "data.preprocess.categorical_impute=missing_level", "model=logreg",
)
# (b) keeps every preprocess default (median and no level for missing values) and a small HGB.
CONFIG_B = ("data.slices=[]", "model=hgb", "model.estimator.max_iter=30")


def infer_and_reproduce(gitml_main, project: Path, frame: pd.DataFrame, name: str, label: str,
                        *config: str) -> dict:
    """Write ``frame`` as a CSV, infer its contract, compose data=csv with ``config``, `dvc repro`.

    Returns the inferred contract; the default gate must pass.
    """
    csv, schema = f"data/external/{name}.csv", f"data/external/{name}.schema.yaml"
    frame.to_csv(project / csv, index=False)
    gitml_main("schema", "infer", csv, "-o", schema, "--label", label, cwd=project)
    gitml_main("config", "compose", "data=csv", f"data.name={name}", f"data.target={snake_case(label)}",
               f"data.source.path={csv}", f"data.source.label={label}", f"data.schema.path={schema}",
               *config, *TINY_OVERRIDES, cwd=project)
    run("dvc", "repro", cwd=project)
    gate = json.loads((project / "reports/gate.json").read_text())
    assert gate["verdict"] == "pass", [r for r in gate["rules"] if r["verdict"] != "pass"]
    return yaml.safe_load((project / schema).read_text())


def oip_inputs(metadata: dict, rows: pd.DataFrame) -> list[dict]:
    """Open Inference Protocol tensors for ``rows`` (no nulls), typed as the model's metadata says."""
    convert = {"BYTES": str, "BOOL": bool, "FP64": float, "INT64": int}
    return [{"name": spec["name"], "shape": [len(rows)], "datatype": spec["datatype"],
             "data": [convert[spec["datatype"]](v) for v in rows[spec["name"]]]}
            for spec in metadata["inputs"]]


def test_dataset_a_from_inference_to_served_answers(fresh_template, tmp_path, start_server, gitml_main):  # noqa: F811
    project = copy_project(fresh_template, tmp_path / "project")
    contract = infer_and_reproduce(gitml_main, project, dataset_a(), "kinds", "Churned", *CONFIG)
    assert contract["columns"]["signup_date"]["dtype"] == "datetime"
    assert contract["columns"]["city"]["open"] is True and len(contract["columns"]["city"]["categories"]) == 50
    assert list(contract["excluded"]) == ["customer_id"]
    summary = json.loads((project / "reports/data.json").read_text())
    # 3 numeric/bool + 5 date parts + 4 missing indicators + store 30+other+missing + city 30+other+missing
    assert summary["features"] == {"columns": 6, "encoded": 3 + 5 + 4 + 32 + 32}

    # As the source has them (the id, dates after training, unseen cities), with the pipeline's
    # column names: ingest snake_cases a source's names, predict and the server take them as they are.
    later = future_rows(20).rename(columns=snake_case)
    later.to_csv(tmp_path / "later.csv", index=False)
    gitml_main("predict", tmp_path / "later.csv", "-o", tmp_path / "scored.csv", cwd=project)
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
    metadata = httpx.get(f"{server.url}/v2/models/model", timeout=30).json()
    v2 = httpx.post(f"{server.url}/v2/models/model/infer", json={"inputs": oip_inputs(metadata, complete)}, timeout=30)
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


def test_dataset_b_three_string_classes(fresh_template, tmp_path, gitml_main):
    project = copy_project(fresh_template, tmp_path / "project")
    contract = infer_and_reproduce(gitml_main, project, dataset_b(), "tiers", "Tier", *CONFIG_B)
    assert contract["label"]["column"] == "tier" and contract["label"]["classes"] == sorted(TIERS)
    assert contract["label"].get("task", "multiclass") == "multiclass"
    assert contract["columns"]["visits"]["dtype"] == "int" and contract["columns"]["order_date"]["dtype"] == "datetime"
    assert list(contract["excluded"]) == ["order_ref"]
    classes = sorted(TIERS)  # the bundle's class order: the contract's
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert sorted(metrics["test"]["per_class"]) == classes
    gate = json.loads((project / "reports/gate.json").read_text())
    assert any(r["kind"] == "baseline" and "roc_auc" in r["rule"] for r in gate["rules"])

    # Labelled rows dated after training, with the pipeline's column names: predict ignores the label.
    later = future_rows_b(300).rename(columns=snake_case)
    later.to_csv(tmp_path / "later.csv", index=False)
    gitml_main("predict", tmp_path / "later.csv", "-o", tmp_path / "scored.csv", cwd=project)
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert list(scored.columns) == ["prediction", *(f"proba_{c}" for c in classes)]
    proba = scored[[f"proba_{c}" for c in classes]].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (scored["prediction"] == np.asarray(classes)[proba.argmax(axis=1)]).all()
    # It learned the tiers, and they still hold two years on: above the majority class's share.
    majority = later["tier"].value_counts(normalize=True).max()
    assert (scored["prediction"] == later["tier"]).mean() > majority + 0.1

    # The app `gitml serve` runs, in-process over the bundle (test (a) runs the real server).
    config = ServeConfig(log_dir=str(tmp_path / "logs"), log_flush_seconds=60)
    with TestClient(create_app(ServeState(ServeSettings(bundle=str(project / "models/bundle"), cfg=config)))) as client:
        rows = later.drop(columns=["tier"]).head(12)
        records = json.loads(rows.to_json(orient="records"))  # nulls included
        answer = client.post("/invocations", json={"dataframe_records": records})
        body = later.drop(columns=["tier"]).to_csv(index=False)  # blank fields, blank regions among them
        as_csv = client.post("/invocations", content=body, headers={"content-type": "text/csv"})
        complete = rows.dropna().head(4)
        v2 = client.post("/v2/models/model/infer", json={"inputs": oip_inputs(client.get("/v2/models/model").json(), complete)})
        labels = later["tier"].head(12).tolist()  # true classes by name, for labelled-decay metrics
        feedback = client.post("/feedback", json={"request_id": answer.json()["request_id"], "labels": labels})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["prediction"] for p in predictions] == scored["prediction"].head(12).tolist()
    assert all(list(p["probabilities"]) == classes for p in predictions)
    served = np.array([[p["probabilities"][c] for c in classes] for p in predictions])
    assert np.allclose(served, proba[:12], atol=1e-6)
    assert later["region"].isna().any() and len(body) < ARROW_CSV_BYTES  # read by the exact parser
    assert as_csv.status_code == 200, as_csv.text
    assert [p["prediction"] for p in as_csv.json()["predictions"]] == scored["prediction"].tolist()
    assert feedback.status_code == 200 and feedback.json() == {"accepted": 12}, feedback.text

    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["prediction"]["data"] == scored.loc[complete.index, "prediction"].tolist()
    assert outputs["probabilities"]["shape"] == [len(complete), 3]
    assert outputs["probabilities"]["parameters"]["classes"] == classes
    assert np.allclose(np.reshape(outputs["probabilities"]["data"], (-1, 3)), proba[complete.index], atol=1e-6)
