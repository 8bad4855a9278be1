"""Contract inference on a file nobody tuned for: the file it was inferred from always passes.

The file has what real exports have: 3-5% nulls, integer columns read back as floats,
dates as text, a 50-level categorical, a boolean with nulls, a customer id and string
classes. It goes through the real ingest and validate stages, in-process.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import yaml

from gitml import api
from gitml.config.schema import DataConfig, PreprocessConfig, SchemaConfig, SourceConfig, SourceKind
from gitml.data.contract import check_frame, infer_contract, load_contract
from gitml.data.preprocess import Preprocessor
from gitml.errors import ConfigError, DataValidationError
from gitml.package.signature import Signature
from gitml.stages.ingest import ingest
from gitml.stages.prepare import prepare
from gitml.stages.validate import validate

ROWS = 600
FIRST_DAY = pd.Timestamp("2023-01-01")


def export(seed: int = 3, start: pd.Timestamp = FIRST_DAY) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "Customer ID": [f"CUST-{i:06d}" for i in rng.permutation(10 * ROWS)[:ROWS]],
        "Signup Date": (start + pd.to_timedelta(rng.integers(0, 697, ROWS), unit="D")).strftime("%Y-%m-%d"),
        "Age": rng.integers(18, 90, ROWS),
        "Visits": rng.poisson(4, ROWS),
        "Monthly Spend": rng.gamma(2.0, 35.0, ROWS).round(2),
        "Region": rng.choice([f"region-{i:02d}" for i in range(50)], ROWS),
        "Promo": rng.choice([True, False], ROWS),
        "Tier": rng.choice(["bronze", "silver", "gold"], ROWS, p=[0.6, 0.3, 0.1]),
    }).astype({"Age": "float64", "Promo": "object"})
    for column, share in {"Age": 0.03, "Monthly Spend": 0.05, "Region": 0.04, "Promo": 0.04,
                          "Signup Date": 0.03}.items():
        frame.loc[rng.choice(ROWS, int(share * ROWS), replace=False), column] = None
    return frame


@pytest.fixture
def project(tmp_path):
    export().to_csv(tmp_path / "export.csv", index=False)
    return tmp_path


def data_config(schema_path: str | None) -> DataConfig:
    return DataConfig(name="export", target="tier",
                      source=SourceConfig(kind=SourceKind.csv, path="export.csv", label="Tier"),
                      schema=SchemaConfig(path=schema_path))


def run_validate(project, data: DataConfig) -> dict:
    return validate(data, project / "raw", project / "production", project / "contract.json",
                    project / "validation.json", root=project)


def test_inference_records_what_the_data_holds(project):
    contract = load_contract(api.infer_schema(project / "export.csv", project / "schema.yaml", "Tier"))
    columns, excluded = contract.columns, contract.excluded
    assert {n: s.dtype for n, s in columns.items()} == {"signup_date": "datetime", "age": "int", "visits": "int",
                                                       "monthly_spend": "float", "region": "category", "promo": "bool"}
    assert {n: s.dtype for n, s in excluded.items()} == {"customer_id": "id"}  # dates are features, ids are not
    assert all(isinstance(v, int) for n in ("age", "visits") for v in (columns[n].min, columns[n].max))
    assert len(columns["region"].categories or []) == 50
    assert contract.classes == ["bronze", "gold", "silver"]
    # Observed share plus a margin where there were nulls; none allowed where there were none.
    assert 0.03 < columns["age"].max_null_fraction < 0.2
    assert 0.05 < columns["monthly_spend"].max_null_fraction < 0.2
    assert columns["visits"].max_null_fraction == 0.0 and excluded["customer_id"].max_null_fraction == 0.0
    assert columns["signup_date"].min is not None and str(columns["signup_date"].min) <= "2023-01-01"
    assert not columns["region"].open  # 50 levels: not over data.schema.max_categories
    assert "identifier" in excluded["customer_id"].reason


def test_the_file_it_was_inferred_from_passes_the_validate_stage(project):
    api.infer_schema(project / "export.csv", project / "schema.yaml", "Tier")
    ingest(data_config("schema.yaml"), project / "raw", root=project)
    (project / "production").mkdir()
    report = run_validate(project, data_config("schema.yaml"))
    assert report["valid"] and report["rows"] == ROWS


def test_later_dates_pass_and_broken_batches_fail(project):
    api.infer_schema(project / "export.csv", project / "schema.yaml", "Tier")
    data = data_config("schema.yaml")
    ingest(data, project / "raw", root=project)
    production = project / "production"
    production.mkdir()
    later = export(seed=4, start=FIRST_DAY + pd.Timedelta(days=1500)).rename(columns=str.lower)
    later.columns = [c.replace(" ", "_") for c in later.columns]
    later.to_parquet(production / "later.parquet", index=False)
    assert run_validate(project, data)["valid"]  # dates after the training range, fresh ids

    broken = later.head(100).copy()
    broken["signup_date"] = ["1990-01-01", "soon", *broken["signup_date"][2:]]
    broken.loc[:40, "monthly_spend"] = None
    broken.to_parquet(production / "broken.parquet", index=False)
    with pytest.raises(DataValidationError):
        run_validate(project, data)
    rules = {(f["column"], f["rule"].split("(")[0].split("<")[0])
             for f in yaml.safe_load((project / "validation.json").read_text())["failures"]}
    assert rules == {("signup_date", "on_or_after"), ("signup_date", "parses_as_datetime"),
                     ("monthly_spend", "max_null_fraction")}


def test_inferred_by_the_validate_stage_itself_passes_and_prepares(project):
    ingest(data_config(None), project / "raw", root=project)
    (project / "production").mkdir()
    assert run_validate(project, data_config(None))["valid"]
    contract = load_contract(project / "contract.json")
    assert set(contract.excluded) == {"customer_id"}
    summary = prepare(data_config(None), project / "raw", project / "production", project / "contract.json",
                      project / "prepared")
    assert summary["features"] == {"columns": 6, "encoded": 4 + 5 + 50}  # 5 default date parts


def test_ids_stay_out_of_features_and_dates_become_numeric_parts(project):
    ingest(data_config(None), project / "raw", root=project)
    raw = pd.read_parquet(project / "raw" / "data.parquet")
    contract = infer_contract(raw, "tier")
    prep = Preprocessor.fit(raw, contract, PreprocessConfig())
    names = prep.feature_names()
    assert not any(n.startswith("customer_id") for n in names)
    assert [n for n in names if n.startswith("signup_date")] == [
        "signup_date.year", "signup_date.month", "signup_date.day", "signup_date.dayofweek", "signup_date.days"]
    assert len(names) == 4 + 5 + 50  # age, visits, monthly_spend, promo + date parts + one-hot region
    assert np.isfinite(prep.transform(raw)).all()  # nulls, bools with nulls: all imputed
    signature = Signature.from_contract(contract)
    assert Signature.from_dict(signature.to_dict()) == signature
    assert set(signature.features) == set(contract.columns)


def test_summary_one_line_per_column_printed_and_in_the_file(project, caplog):
    with caplog.at_level(logging.INFO, logger="gitml.data.infer"):
        out = api.infer_schema(project / "export.csv", project / "schema.yaml", "Tier")
    header = [line[2:] for line in out.read_text().splitlines() if line.startswith("# ")][1:]
    assert len(header) == 8  # seven columns and the label
    assert any(line.startswith("signup_date: datetime") and "later dates allowed" in line for line in header)
    assert any(line.startswith("customer_id: id") and "excluded from features" in line for line in header)
    assert any(line.startswith("age: int, nulls <= ") and "[" in line for line in header)
    assert all(line in caplog.text for line in header)


def test_integral_floats_get_integer_bounds_with_margin():
    frame = pd.DataFrame({"n": [1.0, 2.0, None, 7.0], "x": [0.5, 1.0, 2.0, 3.0], "y": [0, 1, 0, 1]})
    spec = infer_contract(frame, "y", range_margin=0.25).columns
    assert (spec["n"].dtype, spec["n"].min, spec["n"].max) == ("int", -1, 9)
    assert type(spec["n"].min) is int and spec["x"].dtype == "float"
    assert check_frame(frame, infer_contract(frame, "y"), "snap") == []


def test_text_that_merely_parses_is_no_date_and_repeated_text_no_id():
    frame = pd.DataFrame({"code": [str(i % 80) for i in range(400)], "y": [0, 1] * 200})
    contract = infer_contract(frame, "y", max_categories=50)
    assert contract.columns["code"].dtype == "category" and not contract.excluded


def test_declared_excluded_columns_round_trip_and_unknown_kinds_are_named(project, tmp_path):
    path = api.infer_schema(project / "export.csv", tmp_path / "schema.yaml", "Tier")
    data = yaml.safe_load(path.read_text())
    # A contract written before dates were features: the date under excluded. It still loads.
    data.setdefault("excluded", {})["signup_date"] = {"dtype": "datetime", "reason": "declared",
                                                      "min": "2022-06-01", "max_null_fraction": 0.1}
    del data["columns"]["signup_date"]
    path.write_text(yaml.safe_dump(data))
    contract = load_contract(path)
    assert set(contract.excluded) >= {"signup_date"}
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(contract.to_dict()))  # what load reads, written back, reads the same
    assert load_contract(again).to_dict() == contract.to_dict()
    data = contract.to_dict()
    data["excluded"]["signup_date"]["dtype"] = "timestamp"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_contract(path)
    assert info.value.key == "excluded.signup_date.dtype"
