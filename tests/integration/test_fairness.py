"""Fairness gates (issue 17 item 4): a data set whose label is biased by a group fails a
demographic-parity rule, the same rows with a fair label pass, and a regression whose errors
differ by age band fails an error-gap rule.

Each case runs the real stages in this process (ingest, validate, prepare, train, evaluate,
package, gate) on a CSV written here, with a scikit-learn model so it takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gitml.gate.rules import GateResult
from tests.projects import ROOT, TINY_OVERRIDES

pytestmark = pytest.mark.slow  # real stages, real training: seconds each

PARITY = "{metric: fairness.group.demographic_parity_difference, max: 0.1}"


def people(rows: int = 2000, seed: int = 3, biased: bool = True) -> pd.DataFrame:
    """Two features and a group (A or B, half each); the label is 1 for 80% of A and 20% of B
    whatever the features say (``biased``), or follows the first feature alone."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(size=rows).round(4), "x2": rng.normal(size=rows).round(4),
                          "group": rng.choice(["A", "B"], rows)})
    if biased:
        label = rng.random(rows) < np.where(frame["group"] == "A", 0.8, 0.2)
    else:
        label = frame["x1"] + rng.normal(0, 0.5, rows) > 0
    frame["label"] = np.where(label, "yes", "no")
    return frame


def run_pipeline(work: Path, frame: pd.DataFrame, *overrides: str, contract: dict | None = None,
                 ) -> tuple[dict, GateResult]:
    """Every stage on ``frame`` (label ``label``), in this process: (metrics.json, the gate's result).

    ``contract``: a declared data contract (data.schema.path); None infers one from the rows.
    """
    from gitml.config.compose import compose, to_plain
    from gitml.config.params import validate_config
    from gitml.gate.judge import judge
    from gitml.package.build import PackageInputs, package
    from gitml.stages.evaluate import evaluate
    from gitml.stages.ingest import ingest
    from gitml.stages.prepare import prepare
    from gitml.stages.train import train
    from gitml.stages.validate import validate

    work.mkdir(parents=True)
    frame.to_csv(work / "rows.csv", index=False)
    schema = "null"
    if contract is not None:
        (work / "contract.yaml").write_text(yaml.safe_dump(contract))
        schema = str(work / "contract.yaml")
    cfg = validate_config(to_plain(compose(ROOT / "conf", [
        *TINY_OVERRIDES, "data=csv", "data.name=people", "data.target=label", f"data.source.path={work / 'rows.csv'}",
        "data.source.label=label", f"data.schema.path={schema}", "data.slices=[]", "gate.champion.enabled=false",
        *overrides])), source="tests")
    data, reports, model = work / "data", work / "reports", work / "models/model"
    ingest(cfg.data, data / "raw", root=work)
    validate(cfg.data, data / "raw", data / "production", data / "contract.json", reports / "validation.json",
             root=work)
    prepare(cfg.data, data / "raw", data / "production", data / "contract.json", data / "prepared",
            data / "summary.json")
    train(cfg, data / "prepared", model, None, reports / "training.csv", reports / "train.json")
    evaluate(cfg.data, data / "prepared", model, reports / "metrics.json", reports / "plots")
    inputs = PackageInputs(model, data / "prepared", data / "contract.json", reports / "metrics.json",
                           data / "summary.json", work / "dvc.lock")
    bundle = package(cfg, inputs, work / "models/bundle")
    result = judge(cfg, bundle, pd.read_parquet(data / "prepared/test.parquet"), repo=work)
    return json.loads((reports / "metrics.json").read_text()), result


def fairness_rule(result: GateResult):
    (rule,) = [r for r in result.rules if r.kind == "fairness"]
    return rule


def test_a_label_biased_by_group_fails_the_parity_rule_and_a_fair_one_passes(tmp_path):
    metrics, result = run_pipeline(tmp_path / "biased", people(biased=True), "model=logreg",
                                   "data.sensitive=[group]", f"gate.thresholds=[{PARITY}]")
    section = metrics["test"]["fairness"]["group"]
    assert section["groups"]["A"]["selection_rate"] > 0.9 > 0.1 > section["groups"]["B"]["selection_rate"]
    assert section["demographic_parity_difference"] > 0.8
    rule = fairness_rule(result)
    assert result.verdict == "fail" and rule.verdict == "fail"
    assert "selection rate" in rule.reason and "group=A vs" in rule.reason and "group=B." in rule.reason
    assert "gate.thresholds.0" in rule.reason
    assert "group" in features(tmp_path / "biased")  # inferred: the group is a feature

    # The same people with a label that follows x1 alone; here the group is no model feature
    # (a declared contract excludes it) and still reaches evaluation from the prepared records.
    fair = people(biased=False)
    metrics, result = run_pipeline(tmp_path / "fair", fair, "model=logreg", "data.sensitive=[group]",
                                   f"gate.thresholds=[{PARITY}]", contract=contract_without_group(fair))
    section = metrics["test"]["fairness"]["group"]
    rule = fairness_rule(result)
    assert result.verdict == "pass", [r.reason for r in result.failed()]
    assert rule.verdict == "pass" and rule.value == section["demographic_parity_difference"] < 0.1
    assert section["equalized_odds_difference"] < 0.2 and set(section["groups"]) == {"A", "B"}
    assert metrics["test"]["accuracy"] > 0.8 and "group" not in features(tmp_path / "fair")


def features(work: Path) -> list[str]:
    """The columns the model reads (the fitted preprocessing's numeric and categorical ones)."""
    prep = json.loads((work / "data/prepared/preprocessor.json").read_text())
    return [*prep["numeric"], *prep["categorical"]]


def contract_without_group(frame: pd.DataFrame) -> dict:
    """The contract gitml infers, with ``group`` moved from the features to the excluded columns."""
    from gitml.data.infer import infer_contract

    contract = infer_contract(frame, "label").to_dict()
    del contract["columns"]["group"]
    contract["excluded"] = {"group": {"dtype": "id", "reason": "sensitive: measured for fairness, not learned"}}
    return contract


def test_a_regression_whose_errors_differ_by_age_band_fails_the_error_gap_rule(tmp_path):
    rng = np.random.default_rng(4)
    rows = 1500
    frame = pd.DataFrame({"x1": rng.normal(size=rows).round(4), "age": rng.integers(18, 80, rows)})
    noise = rng.normal(0, np.where(frame["age"] < 40, 0.1, 2.0))  # older rows: a label the features cannot tell
    frame["label"] = (3 * frame["x1"] + noise).round(4)
    metrics, result = run_pipeline(
        tmp_path / "regression", frame, "model=ridge", "data.sensitive=[age]",
        "data.slices=[{column: age, bins: [0, 40, 120]}]",
        "gate.thresholds=[{metric: fairness.age.mae_gap, max: 0.5}]")
    section = metrics["test"]["fairness"]["age"]
    groups = section["groups"]
    assert set(groups) == {"[0, 40)", "[40, 120)"}
    assert groups["[40, 120)"]["mae"] > 1.0 > 0.5 > groups["[0, 40)"]["mae"]
    assert section["mae_gap"] == groups["[40, 120)"]["mae"] - groups["[0, 40)"]["mae"]
    rule = fairness_rule(result)
    assert rule.verdict == "fail" and "MAE" in rule.reason and "age=[40, 120) vs" in rule.reason


def test_a_sensitive_column_the_contract_rules_out_fails_validate_before_training(tmp_path):
    """A numeric group column without bins is refused at validate, naming the key: no model is trained."""
    from gitml.errors import ConfigError

    frame = people(rows=200)
    frame["score"] = np.arange(len(frame)) % 7
    with pytest.raises(ConfigError) as info:
        run_pipeline(tmp_path / "w", frame, "data.sensitive=[group,score,nope]")
    assert [key for key, _ in info.value.problems] == ["data.sensitive.1", "data.sensitive.2"]
    assert "'score' is numeric: give it bins in data.slices" in str(info.value)
    assert not (tmp_path / "w/models").exists() and not (tmp_path / "w/data/contract.json").exists()
