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


def test_the_command_prints_what_it_decided_per_column(tmp_path, gitml_main, caplog):
    source = tmp_path / "orders.csv"
    pd.DataFrame({"Order Date": ["2024-01-03", "2024-02-11", None, "2024-03-30"],
                  "Items": [1.0, None, 3.0, 2.0], "Gift": [True, None, False, True],
                  "Status": ["open", "done", "done", "open"]}).to_csv(source, index=False)
    with caplog.at_level("INFO", logger="gitml.data.infer"):
        result = gitml_main("schema", "infer", source, "-o", "orders.yaml", "--label", "Status", cwd=tmp_path)
    assert "wrote orders.yaml" in result.stdout
    assert "items: int, nulls <= 0.3, [0, 4]" in caplog.text
    assert "gift: bool, nulls <= 0.3" in caplog.text
    assert "order_date: datetime, nulls <= 0.3, from 2023-12-12, later dates allowed" in caplog.text
    contract = load_contract(tmp_path / "orders.yaml")
    assert check_frame(pd.read_csv(source).rename(columns=str.lower).rename(
        columns={"order date": "order_date"}), contract, "orders.csv") == []


def test_null_margin_and_max_categories_reach_the_contract(tmp_path, gitml_main):
    source = tmp_path / "orders.csv"
    pd.DataFrame({"Ref": ["a1", "b2", "c3", "d4", "e5"], "Items": [1.0, None, 3.0, 2.0, 5.0],
                  "Status": ["open", "done", "done", "open", "open"]}).to_csv(source, index=False)
    gitml_main("schema", "infer", source, "-o", "default.yaml", "--label", "Status", cwd=tmp_path)
    default = load_contract(tmp_path / "default.yaml")
    assert default.columns["items"].max_null_fraction == 0.25  # 1 of 5 rows + 0.05
    assert default.columns["ref"].dtype == "category"  # 5 levels: not over the default 50
    gitml_main("schema", "infer", source, "-o", "tuned.yaml", "--label", "Status", "--null-margin", "0.3",
               "--max-categories", "4", cwd=tmp_path)
    tuned = load_contract(tmp_path / "tuned.yaml")
    assert tuned.columns["items"].max_null_fraction == 0.5  # 1 of 5 rows + 0.3
    assert "ref" not in tuned.columns and tuned.excluded["ref"].dtype == "id"  # 5 distinct levels > 4
    refused = gitml_main("schema", "infer", source, "-o", "bad.yaml", "--null-margin", "-0.1", cwd=tmp_path,
                         check=False)
    assert refused.returncode == 2 and not (tmp_path / "bad.yaml").exists()


def test_a_class_named_na_or_none_is_a_class_and_the_file_passes_its_contract(tmp_path):
    # pandas reads "NA" and "None" as missing: infer found two classes of four, and validate
    # then failed the file the contract came from (half of its labels missing).
    from gitml.data.sources import SourceKind, load_file, read_csv

    source = tmp_path / "orders.csv"
    source.write_text("Amount,Market\n" + "".join(f"{i},{m}\n" for i, m in enumerate(["NA", "EU", "None", "APAC"] * 5)))
    contract = load_contract(api.infer_schema(source, tmp_path / "orders.yaml", label="Market"))
    assert contract.classes == ["APAC", "EU", "NA", "None"]
    frame = load_file(source, SourceKind.csv, "Market", "market")
    assert sorted(frame["market"]) == sorted(["NA", "EU", "None", "APAC"] * 5)
    assert check_frame(frame, contract, "orders.csv") == []
    # An empty field is still a missing label, and a numeric label keeps pandas' "NA" (R's missing number).
    source.write_text("Amount,Market,Score\n1,NA,0.5\n2,,NA\n3,EU,1.5\n")
    assert read_csv(source, "Market")["Market"].tolist() == ["NA", None, "EU"]
    assert read_csv(source, "Score")["Score"].isna().tolist() == [False, True, False]
