"""Fairness metrics (evaluate/fairness.py), their gate rules' reasons and config checks, and the report's table."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gitml.config.compose import compose, to_plain
from gitml.config.schema import DataConfig, GateConfig, SliceConfig, ThresholdRule
from gitml.errors import ConfigError
from gitml.evaluate.fairness import contract_problems, fairness_metrics, sensitive_groups
from gitml.gate.rules import evaluate_gate

ROOT = Path(__file__).resolve().parents[2]
# 10 rows: A holds 4 positives of 6, B 1 of 4; the model says yes to 3 of A and 2 of B.
GROUPS = np.array(["A"] * 6 + ["B"] * 4)
ACTUAL = np.array([1, 1, 1, 1, 0, 0, 1, 0, 0, 0])
PREDICTED = np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 0])


def binary(groups=GROUPS, actual=ACTUAL, predicted=PREDICTED, **data) -> dict:
    records = pd.DataFrame({"sex": groups})
    proba = np.stack([1 - predicted, predicted], axis=1).astype(float)
    return fairness_metrics(records, actual, proba, ["no", "yes"], DataConfig(name="t", sensitive=["sex"], **data),
                            False)["sex"]


def gate_with(*rules: ThresholdRule) -> GateConfig:
    gate = GateConfig(thresholds=list(rules))
    gate.baseline.enabled = gate.champion.enabled = gate.significance.enabled = False
    gate.budgets.max_bundle_mb = None  # the gate's default rules, off: only the thresholds
    return gate


def test_binary_metrics_are_the_group_rates_worked_by_hand():
    section = binary()
    a, b = section["groups"]["A"], section["groups"]["B"]
    assert a == {"n": 6, "selection_rate": 3 / 6, "tpr": 2 / 4, "fpr": 1 / 2}
    assert b == {"n": 4, "selection_rate": 2 / 4, "tpr": 1 / 1, "fpr": 1 / 3}
    assert section["demographic_parity_difference"] == pytest.approx(0.0)
    assert section["demographic_parity_ratio"] == pytest.approx(1.0)
    # equalized odds: the worse of the TPR gap (0.5) and the FPR gap (1/6)
    assert section["equalized_odds_difference"] == pytest.approx(0.5)
    assert section["equalized_odds_ratio"] == pytest.approx(0.5)


def test_the_metric_names_are_the_ones_the_gate_config_allows():
    from gitml.config.rules_fairness import CLASSIFICATION_RANGES, REGRESSION_RANGES

    assert set(binary()) - {"groups"} == set(CLASSIFICATION_RANGES)
    records, y = pd.DataFrame({"sex": GROUPS}), np.arange(10.0)
    numbers = fairness_metrics(records, y, y + (GROUPS == "B"), [], DataConfig(name="t", sensitive=["sex"]), True)
    assert set(numbers["sex"]) - {"groups"} == set(REGRESSION_RANGES)
    assert numbers["sex"]["mae_gap"] == pytest.approx(1.0) and numbers["sex"]["groups"]["A"]["mae"] == 0.0


def test_rates_a_group_cannot_have_are_null_and_equalized_odds_skips_that_group():
    groups = np.array(["A"] * 4 + ["B"] * 4 + ["C"] * 2)
    actual = np.array([1, 1, 0, 0, 1, 0, 1, 0, 0, 0])  # C: no positives, so no true-positive rate
    section = binary(groups, actual, np.array([1, 0, 0, 0, 1, 1, 1, 0, 1, 1]))
    assert section["groups"]["C"]["tpr"] is None and section["groups"]["C"]["fpr"] == 1.0
    # over A and B only: TPR 0.5 vs 1.0, FPR 0 vs 0.5
    assert section["equalized_odds_difference"] == pytest.approx(0.5)
    alone = binary(np.array(["A"] * 10))
    assert alone["demographic_parity_difference"] is None and alone["equalized_odds_difference"] is None


def test_multiclass_is_one_vs_rest_per_class_and_the_worst_class_on_top():
    groups = np.array(["A"] * 4 + ["B"] * 4)
    y = np.array([0, 1, 2, 0, 0, 1, 2, 2])
    predicted = np.array([0, 1, 2, 0, 2, 2, 2, 2])
    section = fairness_metrics(pd.DataFrame({"g": groups}), y, np.eye(3)[predicted], ["a", "b", "c"],
                               DataConfig(name="t", sensitive=["g"]), False)["g"]
    assert set(section["per_class"]) == {"a", "b", "c"}
    # class c: selected for 1 of 4 in A and 4 of 4 in B
    assert section["per_class"]["c"]["demographic_parity_difference"] == pytest.approx(0.75)
    assert section["demographic_parity_difference"] == pytest.approx(0.75)
    assert section["groups"] == {"A": {"n": 4, "accuracy": 1.0}, "B": {"n": 4, "accuracy": 0.5}}
    gate = gate_with(ThresholdRule("fairness.g.demographic_parity_difference", max=0.5))
    (rule,) = evaluate_gate(gate, {"test": {"fairness": {"g": section}}}, None, None, None).rules
    assert rule.verdict == "fail" and rule.kind == "fairness"
    assert "(class c): selection rate 1 in g=B vs 0.25 in g=A." in rule.reason


def test_groups_come_from_values_bins_or_refusals_naming_the_key():
    records = pd.DataFrame({"sex": ["f", None, "m"], "age": [20.0, 50.0, None], "joined": pd.to_datetime(
        ["2024-01-01"] * 3), "id": ["a", "b", "c"], "vip": [True, False, True]})
    data = DataConfig(name="t", sensitive=["sex", "age", "joined", "nope", "id", "vip"],
                      slices=[SliceConfig("age", [0.0, 40.0, 120.0])])
    assert sensitive_groups(records, data, 0).tolist() == ["f", "(missing)", "m"]
    assert sensitive_groups(records, data, 1).tolist() == ["[0, 40)", "[40, 120)", "(missing)"]
    assert sensitive_groups(records, data, 5).tolist() == ["True", "False", "True"]
    for index, words in [(2, "holds dates"), (3, "not in the data contract's columns"), (4, "more than")]:
        narrow = copy.deepcopy(data)
        narrow.schema.max_categories = 2
        with pytest.raises(ConfigError) as info:
            sensitive_groups(records, narrow, index)
        assert info.value.key == f"data.sensitive.{index}" and words in str(info.value)
    data.slices = []
    with pytest.raises(ConfigError, match=r"numeric: give it bins in data\.slices"):
        sensitive_groups(records, data, 1)


def test_the_contract_rules_out_a_wrong_sensitive_column_before_any_training():
    """What validate refuses from the contract alone: the same words evaluate would use, every key named."""
    from gitml.data.contract import ColumnSpec, Contract, ExcludedColumn

    contract = Contract("y", ["no", "yes"], columns={
        "sex": ColumnSpec("category", categories=["f", "m"]), "age": ColumnSpec("float", 0.0, 99.0),
        "zip": ColumnSpec("category", categories=[f"z{i}" for i in range(60)]), "vip": ColumnSpec("bool"),
        "n": ColumnSpec("int", 0, 9)}, excluded={"joined": ExcludedColumn("datetime", "a date"),
                                                 "region": ExcludedColumn("id", "a group, not a feature")})
    data = DataConfig(name="t", sensitive=["sex", "age", "zip", "vip", "n", "joined", "region", "nope"],
                      slices=[SliceConfig("age", [0.0, 40.0, 120.0])])
    problems = dict(contract_problems(data, contract))
    assert set(problems) == {"data.sensitive.2", "data.sensitive.4", "data.sensitive.5", "data.sensitive.7"}
    assert "60 distinct values, more than data.schema.max_categories (50)" in problems["data.sensitive.2"]
    assert "'n' is numeric: give it bins in data.slices" in problems["data.sensitive.4"]
    assert "holds dates" in problems["data.sensitive.5"]
    assert "'nope' is not in the data contract's columns: sex, age, zip, vip, n, joined, region" in problems[
        "data.sensitive.7"]
    assert contract_problems(DataConfig(name="t", sensitive=["sex", "vip", "region"]), contract) == []


def test_the_gate_names_the_groups_furthest_apart_and_why_a_value_is_undefined():
    section = binary()
    gate = gate_with(ThresholdRule("fairness.sex.equalized_odds_difference", max=0.2),
                     ThresholdRule("fairness.sex.demographic_parity_difference", max=0.1),
                     ThresholdRule("fairness.age.demographic_parity_difference", max=0.1))
    metrics = {"test": {"fairness": {"sex": section}}}
    odds, parity, missing = evaluate_gate(gate, metrics, None, None, None).rules
    assert odds.verdict == "fail" and odds.value == pytest.approx(0.5)
    assert odds.reason.endswith("(gate.thresholds.0). Furthest apart: true-positive rate 1 in sex=B vs 0.5 in sex=A.")
    assert parity.verdict == "pass" and "selection rate" in parity.reason
    assert missing.verdict == "fail" and "no 'age' under 'test.fairness'; available: sex" in missing.reason
    alone = {"test": {"fairness": {"sex": binary(np.array(["A"] * 10))}}}
    (rule,) = evaluate_gate(gate_with(gate.thresholds[1]), alone, None, None, None).rules
    assert rule.verdict == "fail" and rule.kind == "fairness"
    assert "undefined on this split: it holds 1 group of sex (A), nothing to compare" in rule.reason


@pytest.fixture(scope="module")
def composed() -> dict:
    """The shipped config as plain data, without slices; composed once (about a second)."""
    return to_plain(compose(ROOT / "conf", ["data.slices=[]"]))


@pytest.mark.parametrize(("rule", "sensitive", "key", "words"), [
    ({"metric": "fairness.age.demographic_parity_difference", "max": 0.1}, ["sex"], "gate.thresholds.0.metric",
     "'age' is not a data.sensitive column. Sensitive columns: sex"),
    ({"metric": "fairness.sex.parity", "max": 0.1}, ["sex"], "gate.thresholds.0.metric",
     "unknown fairness metric 'fairness.sex.parity'"),
    ({"metric": "fairness.sex.demographic_parity_difference", "max": 0.1, "slice": "*"}, ["sex"],
     "gate.thresholds.0.metric", "remove the slice"),
    ({"metric": "fairness.sex.demographic_parity_ratio", "min": 1.2}, ["sex"], "gate.thresholds.0.min",
     "between 0 and 1"),
    ({"metric": "fairness.sex.mae_gap", "max": 0.5}, ["sex", "sex"], "data.sensitive.1", "listed twice"),
    ({"metric": "fairness.sex.mae_gap", "max": 0.5}, ["sex", "target"], "data.sensitive.1", "is the label"),
])
def test_config_names_bad_fairness_rules_by_key(composed, rule, sensitive, key, words):
    from gitml.config.params import validate_config

    plain = copy.deepcopy(composed)
    plain["data"]["sensitive"], plain["gate"]["thresholds"] = sensitive, [rule]
    with pytest.raises(ConfigError) as info:
        validate_config(plain, "params.yaml")
    problems = dict(info.value.problems)
    assert key in problems and words in problems[key], problems


def test_good_fairness_rules_compose_cleanly(composed):
    from gitml.config.params import validate_config

    plain = copy.deepcopy(composed)
    plain["data"]["sensitive"] = ["mean_radius"]
    plain["data"]["slices"] = [{"column": "mean_radius", "bins": [0.0, 12.0, 100.0]}]
    plain["gate"]["thresholds"] = [{"metric": "fairness.mean_radius.per_class.1.equalized_odds_difference", "max": 0.2},
                                   {"metric": "fairness.mean_radius.demographic_parity_ratio", "min": 0.8}]
    assert validate_config(plain, "params.yaml").data.sensitive == ["mean_radius"]


def test_the_report_shows_a_fairness_table_only_when_evaluate_wrote_one(tmp_path):
    import json

    from gitml.ci.report import fairness_section

    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"test": {"accuracy": 0.9}}))
    assert fairness_section(path) is None and fairness_section(tmp_path / "absent.json") is None
    path.write_text(json.dumps({"test": {"fairness": {"sex": binary()}}}))
    table = fairness_section(path)
    assert table is not None and table.startswith("### Fairness (test)")
    assert "| sex | 0 | 1 | 0.5 | 0.5 | selection rate 0.5 in sex=B vs 0.5 in sex=A |" in table
    assert "| A | 6 | 0.5 | 0.5 | 0.5 |" in table and "| B | 4 | 0.5 | 1 | 0.3333 |" in table
