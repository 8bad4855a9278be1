"""The gate judges the packaged bundle, and its verdict admits that bundle only."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from gitml.config.schema import BaselineRule, BudgetRule, ChampionRule, GateConfig, SignificanceRule
from gitml.gate.judge import judge, measure_latency
from gitml.gate.report import verdict_problems, write_report
from gitml.gate.rules import ChampionEvidence, evaluate_gate
from gitml.package.bundle import load_bundle
from tests.tiny_bundles import rows, tiny_bundle


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("verdict")
    return load_bundle(tiny_bundle(root / "v1")), load_bundle(tiny_bundle(root / "v2", version="v2", rule=1))


def test_the_judged_bundle_is_named_and_no_other_is_admitted(bundles, tmp_path):
    judged, other = bundles
    test_rows = rows(60, seed=3).assign(y=lambda f: (f["x0"] > 0).astype("int64"))
    gate = GateConfig(baseline=BaselineRule(enabled=False), thresholds=[], champion=ChampionRule(enabled=False),
                      significance=SignificanceRule(enabled=False),
                      budgets=BudgetRule(max_latency_p95_ms=10_000, max_bundle_mb=50, latency_samples=20))
    cfg = SimpleNamespace(gate=gate, data=SimpleNamespace(target="y"))
    result = judge(cfg, judged, test_rows, repo=tmp_path)  # no git here: no champion
    kinds = {r.kind: r.verdict for r in result.rules}
    assert result.verdict == "pass" and kinds == {"latency": "pass", "bundle_size": "pass"}
    size = next(r for r in result.rules if r.kind == "bundle_size")
    assert size.value == pytest.approx(judged.size_bytes / 1e6)

    write_report(result, tmp_path / "gate.json", tmp_path / "gate.md", judged)
    verdict = json.loads((tmp_path / "gate.json").read_text())
    assert verdict["bundle"] == {"id": judged.id, "manifest_sha256": judged.manifest_sha256}
    assert verdict["model"] == {"md5": judged.model_md5}
    assert judged.id in (tmp_path / "gate.md").read_text()
    assert verdict_problems(verdict, judged, "gate.json") == []
    problems = verdict_problems(verdict, other, "gate.json")
    assert any(f"judged bundle {judged.id}" in p for p in problems), problems
    assert any("judged model" in p for p in problems), problems
    failed = {**verdict, "verdict": "fail", "rules": [{"rule": "test.accuracy >= 0.99", "verdict": "fail"}]}
    assert verdict_problems(failed, judged, "gate.json") == [
        "the gate verdict in gate.json is 'fail' (failed: test.accuracy >= 0.99)"]
    assert "names no bundle" in verdict_problems({"verdict": "pass"}, judged, "old.json")[0]


def test_a_champion_that_cannot_be_scored_fails_both_comparisons_with_the_reason():
    cfg = GateConfig(baseline=BaselineRule(enabled=False), thresholds=[], champion=ChampionRule(),
                     significance=SignificanceRule(),
                     budgets=BudgetRule(max_latency_p95_ms=None, max_latency_ratio=None, max_bundle_mb=None))
    evidence = ChampionEvidence("v1.0.0", pd.Series([0, 1]).to_numpy(), None, None, problem="not on the remote")
    result = evaluate_gate(cfg, {}, evidence, None, None)
    assert result.verdict == "fail"
    assert [(r.kind, r.verdict) for r in result.rules] == [("champion", "fail"), ("significance", "fail")]
    assert all("the champion could not be scored: not on the remote" in r.reason for r in result.rules)


def test_latency_against_the_champion_is_measured_in_the_same_run(bundles):
    """Both models answer the same one-row requests, interleaved: the ratio is what the budget reads."""
    challenger, champion = bundles
    test_rows = rows(40, seed=4)
    alone = measure_latency(challenger, None, test_rows, 30)
    assert alone.p95_ms > 0 and alone.champion_p95_ms is None and alone.ratio is None
    both = measure_latency(challenger, champion, test_rows, 30)
    assert both.samples == 30 and both.p95_ms > 0 and both.champion_p95_ms > 0
    # no bound on the ratio itself: timings are no assertion (a loaded machine once gave 0.12
    # for two bundles of one kind); what the budget reads is the challenger's p95 over the champion's
    assert both.ratio == both.p95_ms / both.champion_p95_ms


def test_a_champion_that_answers_another_question_is_skipped_not_failed(bundles, tmp_path):
    """A regression challenger against a classifier in prod (or a changed class set): the
    champion rules have nothing to compare, so they are skipped with the reason; the gate
    still judges the bundle on its other rules."""
    from gitml.gate.judge import champion_evidence

    classifier, _ = bundles
    regressor = load_bundle(tiny_bundle(tmp_path / "reg", regression=True))
    test_rows = rows(60, seed=3).assign(y=lambda f: 100 + 20 * f["x0"])
    cfg = SimpleNamespace(data=SimpleNamespace(target="y"), gate=SimpleNamespace(champion_stage="prod"))
    evidence = champion_evidence(cfg, regressor, classifier, "v1.0.0", test_rows)
    assert evidence.incomparable and "champion v1.0.0 is a binary model, the challenger a regression one" in evidence.problem
    gate = GateConfig(baseline=BaselineRule(enabled=False), thresholds=[], champion=ChampionRule(),
                      significance=SignificanceRule(), budgets=BudgetRule(max_latency_p95_ms=None, max_bundle_mb=None))
    result = evaluate_gate(gate, {"task": "regression"}, evidence, None, None)
    assert result.verdict == "pass" and [r.verdict for r in result.rules] == ["skip", "skip"]
    assert all("nothing to compare" in r.reason and "major version" in r.reason for r in result.rules)
