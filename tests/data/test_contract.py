"""The data contract: every rule a snapshot can break is reported, naming column and rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gitml.data.contract import Contract, check_frame, infer_contract, load_contract
from gitml.errors import ConfigError


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "age": rng.integers(18, 90, 200),
        "income": rng.normal(50_000, 10_000, 200),
        "plan": rng.choice(["basic", "pro"], 200),
        "label": rng.choice(["no", "yes"], 200),
    })


@pytest.fixture
def contract(frame) -> Contract:
    return infer_contract(frame, "label", range_margin=0.1)


def rules(failures) -> set[tuple[str, str]]:
    return {(f.column, f.rule) for f in failures}


def test_inferred_contract_describes_the_snapshot(contract):
    assert contract.classes == ["no", "yes"]
    assert contract.columns["age"].dtype == "int"
    assert contract.columns["income"].dtype == "float"
    assert contract.columns["plan"].categories == ["basic", "pro"]


def test_snapshot_it_was_inferred_from_is_valid(frame, contract):
    assert check_frame(frame, contract, "snap") == []


def test_missing_and_unexpected_columns(frame, contract):
    bad = frame.drop(columns=["income"]).assign(extra=1)
    found = rules(check_frame(bad, contract, "snap"))
    assert ("income", "column_present") in found
    assert ("extra", "column_declared") in found


def test_wrong_dtype_is_named(frame, contract):
    bad = frame.assign(income=frame["income"].astype(str))
    failures = check_frame(bad, contract, "snap")
    assert ("income", "dtype_float") in rules(failures)


def test_non_integral_values_in_int_column(frame, contract):
    bad = frame.assign(age=frame["age"] + 0.5)
    assert ("age", "integral_values") in rules(check_frame(bad, contract, "snap"))


def test_label_outside_known_classes(frame, contract):
    bad = frame.copy()
    bad.loc[3, "label"] = "maybe"
    failures = check_frame(bad, contract, "snap")
    assert ("label", "label_in_classes") in rules(failures)
    failure = next(f for f in failures if f.rule == "label_in_classes")
    assert failure.count == 1 and failure.examples == ["maybe"]
    assert "column 'label' failed 'label_in_classes'" in failure.sentence()


def test_out_of_range_unknown_category_and_nulls_all_reported_at_once(frame, contract):
    bad = frame.copy()
    bad.loc[0, "age"] = 500
    bad.loc[1, "plan"] = "platinum"
    bad["income"] = bad["income"].astype("float64")
    bad.loc[2, "income"] = np.nan
    found = rules(check_frame(bad, contract, "snap"))
    assert ("age", "in_range") in {(c, r.split("(")[0]) for c, r in found}
    assert ("plan", "allowed_categories") in found
    assert any(c == "income" and r.startswith("max_null_fraction") for c, r in found)


def test_declared_contract_round_trips_and_rejects_unknown_dtype(contract, tmp_path):
    import yaml

    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(contract.to_dict()))
    assert load_contract(path).to_dict() == contract.to_dict()

    data = contract.to_dict()
    data["columns"]["age"]["dtype"] = "decimal"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_contract(path)
    assert info.value.key == "columns.age.dtype"
