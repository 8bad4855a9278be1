"""`gitml schema infer`: a contract from a trusted file, with the pipeline's column names."""

from __future__ import annotations

import pandas as pd

from gitml import api
from gitml.data.contract import check_frame, load_contract


def test_an_inferred_contract_loads_and_names_snake_cased_columns(tmp_path):
    source = tmp_path / "churn.csv"
    pd.DataFrame({"Monthly Charges": [20.5, 70.25, 99.0], "Plan": ["basic", "pro", "basic"],
                  "Churned": [0, 1, 0]}).to_csv(source, index=False)
    out = api.infer_schema(source, tmp_path / "churn.schema.yaml", label="Churned")
    contract = load_contract(out)
    assert contract.label == "churned" and contract.classes == [0, 1]
    assert set(contract.columns) == {"monthly_charges", "plan"}
    assert contract.columns["plan"].categories == ["basic", "pro"]
    frame = pd.read_csv(source).rename(columns={"Monthly Charges": "monthly_charges", "Plan": "plan",
                                                "Churned": "churned"})
    assert check_frame(frame, contract, "churn.csv") == []  # the file it was inferred from passes
