"""Promotion gate: thresholds, champion comparison, significance, budgets and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gitml.config.schema import (
    BaselineRule,
    BudgetRule,
    ChampionMode,
    ChampionRule,
    GateConfig,
    SignificanceRule,
    SignificanceTest,
    ThresholdRule,
)
from gitml.errors import GitmlError
from gitml.evaluate.metrics import classification_metrics, prior_baseline, regression_metrics
from gitml.gate.report import to_markdown, write_report
from gitml.gate.rules import (
    ChampionEvidence,
    GateResult,
    LatencyEvidence,
    RuleResult,
    evaluate_gate,
)
from gitml.gate.stats import (
    METRICS,
    higher_is_better,
    is_regression_metric,
    mcnemar,
    metric_function,
    paired_bootstrap,
)

REPORT = {
    "test": {
        "n": 200, "accuracy": 0.9, "roc_auc": 0.95, "log_loss": 0.3,
        "per_class": {
            "0": {"precision": 0.9, "recall": 0.92, "f1": 0.91, "support": 120},
            "1": {"precision": 0.8, "recall": 0.70, "f1": 0.75, "support": 80},
        },
    },
    "slices": {
        "mean_radius": {
            "[0, 12)": {"n": 90, "accuracy": 0.80, "roc_auc": 0.91},
            "[12, 40)": {"n": 110, "accuracy": 0.70},  # one class only: no roc_auc
        },
        "texture": {"low": {"n": 100, "accuracy": 0.95}, "high": {"n": 100, "accuracy": 0.60}},
    },
}


def gate(*thresholds: ThresholdRule, **sections) -> GateConfig:
    """A gate with only the given parts switched on."""
    return GateConfig(
        baseline=sections.get("baseline", BaselineRule(enabled=False)),
        thresholds=list(thresholds),
        champion=sections.get("champion", ChampionRule(enabled=False)),
        significance=sections.get("significance", SignificanceRule(enabled=False)),
        budgets=sections.get("budgets", NO_BUDGETS),
    )


NO_BUDGETS = BudgetRule(max_latency_p95_ms=None, max_latency_ratio=None, max_bundle_mb=None)


def run(cfg: GateConfig, champion=None, latency=None, bundle=None, metrics=REPORT,
        champion_latency=None) -> GateResult:
    measured = None if latency is None else LatencyEvidence(latency, champion_latency, 50)
    return evaluate_gate(cfg, metrics, champion, measured, bundle_mb=bundle)


def by_rule(result: GateResult) -> dict[str, RuleResult]:
    return {r.rule: r for r in result.rules}


def proba_from_correct(y: np.ndarray, correct: np.ndarray, confidence: float = 0.8) -> np.ndarray:
    """Binary probabilities whose argmax is right exactly where ``correct`` is True."""
    predicted = np.where(correct, y, 1 - y)
    return np.where(predicted[:, None] == np.arange(2), confidence, 1 - confidence)


def accuracy_evidence(n_right_new: int, n_right_old: int, n: int = 1000, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    new, old = np.arange(n) < n_right_new, rng.permutation(np.arange(n) < n_right_old)
    return ChampionEvidence("v1.0.0", y, proba_from_correct(y, new), proba_from_correct(y, old))


def binormal(n: int, separation: float, y: np.ndarray, rng) -> np.ndarray:
    """Scores N(separation * y, 1) as probabilities: ROC AUC is Phi(separation / sqrt 2)."""
    score = rng.normal(size=n) + separation * y
    p1 = 1 / (1 + np.exp(-score))
    return np.c_[1 - p1, p1]


# ----------------------------------------------------------------------- metrics


@pytest.mark.parametrize("k", [2, 3])
def test_metric_functions_agree_with_reported_metrics(k):
    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 400)
    logits = np.round(rng.normal(size=(400, k)) + 1.5 * np.eye(k)[y], 1)  # with ties
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    reported = classification_metrics(y, proba, list(range(k)))
    for name in METRICS:
        if not is_regression_metric(name):
            assert metric_function(name)(y, proba) == pytest.approx(reported[name], abs=1e-9), name


def test_regression_metric_functions_agree_with_reported_metrics_and_scikit_learn():
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    rng = np.random.default_rng(5)
    y = rng.normal(150, 70, 300).round()  # a score such as disease progression
    predicted = y + rng.normal(10, 40, 300)
    reported = regression_metrics(y, predicted)
    ours = {name: metric_function(name)(y, predicted) for name in ("rmse", "mae", "r2")}
    assert ours == pytest.approx({name: reported[name] for name in ours}, abs=1e-9)
    assert ours == pytest.approx({"rmse": root_mean_squared_error(y, predicted),
                                  "mae": mean_absolute_error(y, predicted), "r2": r2_score(y, predicted)})
    assert not higher_is_better("rmse") and higher_is_better("r2")
    with pytest.raises(GitmlError, match=r"one number per row"):
        metric_function("rmse")(y, np.c_[predicted, predicted])


def test_paired_bootstrap_on_rmse_finds_the_better_regressor_and_r2_agrees():
    rng = np.random.default_rng(9)
    y = rng.normal(0, 10, 800)
    close, far = y + rng.normal(0, 3, 800), y + rng.normal(0, 4, 800)
    rmse = paired_bootstrap("rmse", y, close, far, 500, 0, 0.05)
    assert rmse.difference < 0 and rmse.ci_high < 0 and rmse.p_value < 0.05  # lower is better
    r2 = paired_bootstrap("r2", y, close, far, 500, 0, 0.05)
    assert r2.difference > 0 and r2.ci_low > 0 and r2.p_value < 0.05
    same = paired_bootstrap("rmse", y, close, close + rng.normal(0, 0.01, 800), 500, 0, 0.05)
    assert same.p_value > 0.05


def test_unknown_metric_names_the_allowed_ones():
    with pytest.raises(GitmlError, match=r"Unknown gate metric 'auc'.*roc_auc.*brier"):
        metric_function("auc")
    with pytest.raises(GitmlError, match="Allowed"):
        higher_is_better("auc")
    assert higher_is_better("roc_auc") and not higher_is_better("log_loss")
    assert not higher_is_better("brier")


def test_roc_auc_with_one_class_is_nan_not_an_error():
    y = np.zeros(10, dtype=int)
    assert math.isnan(metric_function("roc_auc")(y, np.full((10, 2), 0.5)))


# -------------------------------------------------------------------- thresholds


def test_threshold_pass_and_fail_name_value_and_bound():
    result = run(gate(ThresholdRule("roc_auc", min=0.9), ThresholdRule("accuracy", min=0.95)))
    rules = by_rule(result)
    passed, failed = rules["test.roc_auc >= 0.9"], rules["test.accuracy >= 0.95"]
    assert passed.verdict == "pass" and passed.value == 0.95
    assert failed.verdict == "fail" and failed.kind == "threshold"
    assert "0.9" in failed.reason and "0.95" in failed.reason and "below" in failed.reason
    assert "gate.thresholds.1" in failed.reason
    assert result.verdict == "fail" and result.failed() == [failed]


def test_max_and_min_together():
    cfg = gate(ThresholdRule("log_loss", max=0.25), ThresholdRule("accuracy", min=0.8, max=0.99))
    rules = run(cfg).rules
    assert rules[0].verdict == "fail" and "above the maximum 0.25" in rules[0].reason
    assert rules[1].rule == "0.8 <= test.accuracy <= 0.99" and rules[1].verdict == "pass"


def test_every_failure_is_reported_at_once():
    cfg = gate(
        ThresholdRule("accuracy", min=0.99), ThresholdRule("roc_auc", min=0.99),
        ThresholdRule("nonexistent", min=0.5), ThresholdRule("log_loss", max=0.1),
        budgets=BudgetRule(max_latency_p95_ms=10.0, max_latency_ratio=None, max_bundle_mb=1.0),
    )
    result = run(cfg, latency=20.0, bundle=5.0)
    assert len(result.failed()) == 6 == len(result.rules)


def test_per_class_dotted_path():
    rule = run(gate(ThresholdRule("per_class.1.recall", min=0.75))).rules[0]
    assert rule.rule == "test.per_class.1.recall >= 0.75"
    assert rule.verdict == "fail" and rule.value == 0.70


def test_slice_star_expands_to_every_group_of_every_column():
    rules = run(gate(ThresholdRule("accuracy", min=0.75, slice="*"))).rules
    assert {r.rule: r.verdict for r in rules} == {
        "accuracy[mean_radius=[0, 12)] >= 0.75": "pass",
        "accuracy[mean_radius=[12, 40)] >= 0.75": "fail",
        "accuracy[texture=low] >= 0.75": "pass",
        "accuracy[texture=high] >= 0.75": "fail",
    }


def test_named_slice_and_a_group_without_the_metric():
    rules = run(gate(ThresholdRule("roc_auc", min=0.8, slice="mean_radius"))).rules
    assert [r.verdict for r in rules] == ["pass", "fail"]
    assert "one class only" in rules[1].reason and "accuracy" in rules[1].reason


@pytest.mark.parametrize(
    ("rule", "metrics", "expected"),
    [
        (ThresholdRule("accuracy", min=0.5, slice="age"), REPORT, ["age", "mean_radius, texture"]),
        (ThresholdRule("f1_macro", min=0.5), REPORT, ["under 'test'", "accuracy, roc_auc"]),
        (ThresholdRule("per_class.2.recall", min=0.5), REPORT, ["'test.per_class'", "0, 1"]),
        (ThresholdRule("accuracy", min=0.5, split="val"), REPORT, ["'val'", "test, slices"]),
        (ThresholdRule("per_class", min=0.5), REPORT, ["not a number"]),
    ],
)
def test_missing_things_fail_with_what_is_available(rule, metrics, expected):
    result = run(gate(rule), metrics=metrics)
    assert result.verdict == "fail"
    for text in expected:
        assert text in result.rules[0].reason


def test_threshold_without_bounds_fails_instead_of_checking_nothing():
    rule = run(gate(ThresholdRule("accuracy"))).rules[0]
    assert rule.verdict == "fail" and "neither min nor max" in rule.reason


# ----------------------------------------------------------------------- champion


def test_without_champion_the_comparison_passes_and_says_so():
    cfg = gate(champion=ChampionRule(), significance=SignificanceRule())
    result = run(cfg)
    assert [r.kind for r in result.rules] == ["champion", "significance"]
    for rule in result.rules:
        assert rule.verdict == "pass"
        assert rule.reason == "no model is assigned to stage 'prod' yet: nothing to compare"
    assert result.champion_version is None


@pytest.mark.parametrize(
    ("right_new", "abs_tol", "rel_tol", "verdict"),
    [
        (895, 0.01, 0.0, "pass"),  # worse by 0.005, tolerance 0.01
        (880, 0.01, 0.0, "fail"),  # worse by 0.02
        (880, 0.01, 0.05, "pass"),  # relative tolerance 0.05 * 0.9 = 0.045
        (930, 0.0, 0.0, "pass"),  # better
    ],
)
def test_not_worse_respects_the_tolerance(right_new, abs_tol, rel_tol, verdict):
    champion = ChampionRule(metric="accuracy", abs_tolerance=abs_tol, rel_tolerance=rel_tol)
    rule = run(gate(champion=champion), accuracy_evidence(right_new, 900)).rules[0]
    assert rule.verdict == verdict
    assert rule.value == pytest.approx(right_new / 1000)
    assert f"{right_new / 1000:.4g}" in rule.reason and "0.9" in rule.reason
    assert "v1.0.0" in rule.reason and "tolerance" in rule.reason


def test_better_mode_needs_more_than_the_margin():
    champion = ChampionRule(metric="accuracy", mode=ChampionMode.better, abs_tolerance=0.01)
    assert run(gate(champion=champion), accuracy_evidence(930, 900)).verdict == "pass"
    failed = run(gate(champion=champion), accuracy_evidence(905, 900)).rules[0]
    assert failed.verdict == "fail" and "required margin 0.01" in failed.reason
    assert failed.rule == "champion accuracy (better than v1.0.0 by > 0.01)"


def test_lower_is_better_metric_and_mismatched_direction():
    evidence = accuracy_evidence(950, 800)  # the challenger is more often right: lower loss
    loss = ChampionRule(metric="log_loss", higher_is_better=False)
    assert run(gate(champion=loss), evidence).verdict == "pass"
    wrong = ChampionRule(metric="log_loss", higher_is_better=True)
    rule = run(gate(champion=wrong), evidence).rules[0]
    assert rule.verdict == "fail" and "lower-is-better" in rule.reason


def test_evidence_that_does_not_fit_fails_the_comparison_without_a_crash():
    evidence = accuracy_evidence(900, 900)
    evidence.proba_champion = evidence.proba_champion[:-1]
    cfg = gate(champion=ChampionRule(), significance=SignificanceRule(n_resamples=10))
    rules = run(cfg, evidence).rules
    assert [r.verdict for r in rules] == ["fail", "fail"]
    assert all("(999, 2) do not fit 1000 labels" in r.reason for r in rules)
    with pytest.raises(GitmlError, match=r"codes 0\.\.1"):
        metric_function("accuracy")(np.array([0, 2]), np.full((2, 2), 0.5))


def test_unknown_champion_metric_is_a_failure_not_a_crash():
    rule = run(gate(champion=ChampionRule(metric="auc")), accuracy_evidence(900, 900)).rules[0]
    assert rule.verdict == "fail" and "Allowed" in rule.reason


# ------------------------------------------------------------------ significance


def test_bootstrap_ci_contains_the_true_auc_difference():
    rng = np.random.default_rng(7)
    n = 3000
    y = rng.integers(0, 2, n)
    old, new = binormal(n, 1.0, y, rng), binormal(n, 1.5, y, rng)
    true = scipy_stats.norm.cdf(1.5 / np.sqrt(2)) - scipy_stats.norm.cdf(1.0 / np.sqrt(2))
    result = paired_bootstrap("roc_auc", y, new, old, n_resamples=1000, seed=0, alpha=0.05)
    assert result.ci_low < true < result.ci_high
    assert result.ci_low < result.difference < result.ci_high
    assert result.p_value < 0.01 and result.n == n and result.resamples == 1000


def test_bootstrap_p_value_for_identical_and_clearly_better_models():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    old, new = binormal(1000, 0.5, y, rng), binormal(1000, 3.0, y, rng)
    same = paired_bootstrap("roc_auc", y, old, old, n_resamples=500, seed=0, alpha=0.05)
    assert same.p_value == 1.0 and same.difference == 0.0
    better = paired_bootstrap("roc_auc", y, new, old, n_resamples=500, seed=0, alpha=0.05)
    assert better.p_value == pytest.approx(2 / 501) and better.ci_low > 0


def test_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 500)
    a, b = rng.dirichlet([1, 1, 1], 500), rng.dirichlet([1, 1, 1], 500)
    first = paired_bootstrap("f1_macro", y, a, b, n_resamples=300, seed=11, alpha=0.1)
    assert first == paired_bootstrap("f1_macro", y, a, b, n_resamples=300, seed=11, alpha=0.1)
    assert first != paired_bootstrap("f1_macro", y, a, b, n_resamples=300, seed=12, alpha=0.1)


def test_bootstrap_drops_resamples_where_the_metric_is_undefined():
    y = np.array([0] * 19 + [1])  # many resamples miss the only positive
    rng = np.random.default_rng(3)
    a, b = rng.dirichlet([1, 1], 20), rng.dirichlet([1, 1], 20)
    result = paired_bootstrap("roc_auc", y, a, b, n_resamples=400, seed=0, alpha=0.05)
    assert 0 < result.resamples < 400 and math.isfinite(result.p_value)


def test_bootstrap_of_1000_resamples_on_5000_rows_finds_a_small_true_gain():
    """A test split as large as real ones (its speed: benchmarks/bench_gate.py, not a timed assert)."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 5000)
    old, new = binormal(5000, 1.0, y, rng), binormal(5000, 1.3, y, rng)
    outcome = paired_bootstrap("roc_auc", y, new, old, n_resamples=1000, seed=0, alpha=0.05)
    true_gain = scipy_stats.norm.cdf(1.3 / math.sqrt(2)) - scipy_stats.norm.cdf(1.0 / math.sqrt(2))
    assert outcome.ci_low < true_gain < outcome.ci_high and outcome.p_value < 0.05


def mcnemar_case(only_new: int, only_old: int, both: int = 50):
    y = np.zeros(only_new + only_old + both, dtype=int)
    new = np.r_[np.zeros(only_new), np.ones(only_old), np.zeros(both)].astype(int)
    old = np.r_[np.ones(only_new), np.zeros(only_old), np.zeros(both)].astype(int)
    return y, new, old


def test_mcnemar_exact_branch_matches_the_binomial_test():
    y, new, old = mcnemar_case(8, 2)
    result = mcnemar(y, new, old)
    assert result.p_value == pytest.approx(scipy_stats.binomtest(8, 10, 0.5).pvalue)
    assert result.difference == pytest.approx(6 / 60) and result.test == "mcnemar"


def test_mcnemar_chi_square_branch_matches_a_hand_computation():
    with pytest.raises(GitmlError, match="one prediction per label"):
        mcnemar(np.zeros(3), np.zeros(2), np.zeros(3))
    y, new, old = mcnemar_case(40, 20)
    statistic = (abs(40 - 20) - 1) ** 2 / 60  # continuity-corrected
    assert mcnemar(y, new, old).p_value == pytest.approx(scipy_stats.chi2.sf(statistic, 1))
    assert mcnemar(y, old, new).difference == pytest.approx(-20 / 110)
    assert mcnemar(*mcnemar_case(0, 0)).p_value == 1.0


@pytest.mark.parametrize("test", [SignificanceTest.bootstrap, SignificanceTest.mcnemar])
def test_better_mode_needs_a_significant_improvement(test):
    champion = ChampionRule(metric="accuracy", mode=ChampionMode.better, abs_tolerance=0.0)
    significance = SignificanceRule(test=test, n_resamples=300)
    clear = run(gate(champion=champion, significance=significance), accuracy_evidence(950, 800))
    assert clear.verdict == "pass"
    marginal = run(gate(champion=champion, significance=significance), accuracy_evidence(805, 800))
    rule = by_rule(marginal)[f"significance: {test.value} on accuracy (alpha 0.05)"]
    assert rule.verdict == "fail" and "not significantly better" in rule.reason
    assert "p = " in rule.reason and "alpha 0.05" in rule.reason


def test_not_worse_mode_fails_only_on_a_significant_drop_beyond_tolerance():
    def significance(evidence, tolerance):
        champion = ChampionRule(metric="accuracy", abs_tolerance=tolerance)
        cfg = gate(champion=champion, significance=SignificanceRule(n_resamples=300))
        return run(cfg, evidence).rules[1]

    drop = significance(accuracy_evidence(800, 950), tolerance=0.01)
    assert drop.verdict == "fail" and "significantly worse by more" in drop.reason
    assert "CI [" in drop.reason and drop.value < 0.05
    assert significance(accuracy_evidence(895, 900), tolerance=0.01).verdict == "pass"
    within = significance(accuracy_evidence(800, 950), tolerance=0.2)
    assert within.verdict == "pass" and "within the tolerance" in within.reason


def test_disabled_significance_is_not_reported():
    result = run(gate(champion=ChampionRule(metric="accuracy")), accuracy_evidence(900, 900))
    assert [r.kind for r in result.rules] == ["champion"]
    assert result.champion_version == "v1.0.0"


# ----------------------------------------------------------------------- budgets


def test_budgets_pass_fail_and_unmeasured():
    budgets = BudgetRule(max_latency_p95_ms=50.0, max_latency_ratio=None, max_bundle_mb=200.0)
    ok = run(gate(budgets=budgets), latency=12.5, bundle=3.0)
    assert ok.verdict == "pass" and [r.kind for r in ok.rules] == ["latency", "bundle_size"]
    over = run(gate(budgets=budgets), latency=60.0, bundle=3.0).rules[0]
    assert over.verdict == "fail" and "60" in over.reason and "50 ms" in over.reason
    missing = run(gate(budgets=budgets), latency=None, bundle=None).rules
    assert all(r.verdict == "fail" and "not measured" in r.reason for r in missing)
    assert run(gate(budgets=NO_BUDGETS)).rules == []


# ------------------------------------------------------------------------ report


def test_to_dict_is_json_ready_with_counts():
    result = run(gate(ThresholdRule("accuracy", min=0.5), ThresholdRule("accuracy", min=0.95)))
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["verdict"] == "fail" and data["champion_version"] is None
    assert data["counts"] == {"pass": 1, "fail": 1, "skip": 0, "total": 2}
    assert data["rules"][1]["rule"] == "test.accuracy >= 0.95"


def test_markdown_has_verdict_and_table(tmp_path):
    budgets = BudgetRule(max_latency_p95_ms=50.0, max_latency_ratio=None, max_bundle_mb=None)
    cfg = gate(ThresholdRule("accuracy", min=0.75, slice="texture"), budgets=budgets)
    result = run(cfg, latency=1.23456)
    text = to_markdown(result)
    assert text.startswith("### Gate: FAIL (1 of 3 rules failed)")
    assert "| Rule | Value | Bound | Verdict | Reason |" in text
    assert "| accuracy[texture=high] >= 0.75 | 0.6 | >= 0.75 | ❌ fail |" in text
    assert "| 1.235 |" in text and "✅ pass" in text
    assert to_markdown(run(gate(ThresholdRule("accuracy", min=0.5)))).startswith("### Gate: PASS")
    write_report(result, tmp_path / "gate.json", tmp_path / "gate.md")
    assert json.loads((tmp_path / "gate.json").read_text())["verdict"] == "fail"
    assert (tmp_path / "gate.md").read_text() == text


def test_markdown_escapes_pipes_in_group_labels():
    metrics = {"slices": {"city": {"a|b": {"accuracy": 0.9}}}}
    text = to_markdown(run(gate(ThresholdRule("accuracy", min=0.5, slice="city")), metrics=metrics))
    assert "accuracy[city=a\\|b]" in text


# ---------------------------------------------------------------------- baseline


def with_baseline(test: dict, dummy: dict) -> dict:
    return {"test": test, "baseline": {"strategy": "prior", "test": dummy}}


def test_prior_baseline_is_sklearns_dummy_classifier():
    from sklearn.dummy import DummyClassifier

    rng = np.random.default_rng(0)
    y_train, y_test = rng.choice(3, 300, p=[0.6, 0.3, 0.1]), rng.choice(3, 80, p=[0.5, 0.3, 0.2])
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((300, 1)), y_train)
    assert np.allclose(prior_baseline(y_train, 3, 80), dummy.predict_proba(np.zeros((80, 1))))
    scores = classification_metrics(y_test, prior_baseline(y_train, 3, 80), [0, 1, 2])
    assert scores["roc_auc"] == pytest.approx(0.5) and scores["balanced_accuracy"] == pytest.approx(1 / 3)
    # a class the training split lacks gets probability 0, not a crash
    assert prior_baseline(np.array([0, 0, 1]), 3, 2)[:, 2].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(("metric", "score", "dummy", "skill", "verdict"), [
    ("auto", 0.55, 0.5, 0.1, "pass"),  # auto: roc_auc; 0.55 is a tenth of the way to 1
    ("auto", 0.54, 0.5, 0.08, "fail"),
    ("balanced_accuracy", 0.4, 1 / 3, 0.1, "pass"),
    ("log_loss", 0.85, 1.0, 0.15, "pass"),  # lower is better: 0.15 of the way to 0
    ("log_loss", 1.2, 1.0, -0.2, "fail"),  # worse than learning nothing
])
def test_baseline_skill_over_the_dummy(metric, score, dummy, skill, verdict):
    name = "roc_auc" if metric == "auto" else metric
    cfg = gate(baseline=BaselineRule(metric=metric, min_skill=0.1))
    rule = run(cfg, metrics=with_baseline({name: score}, {name: dummy})).rules[0]
    assert rule.kind == "baseline" and rule.verdict == verdict, rule
    assert rule.value == pytest.approx(skill) and f"test.{name}" in rule.reason and "gate.baseline" in rule.reason


def test_baseline_without_scores_or_with_a_perfect_dummy_says_why():
    cfg = gate(baseline=BaselineRule())
    missing = run(cfg, metrics={"test": {"roc_auc": 0.9}}).rules[0]
    assert missing.verdict == "fail" and "rerun evaluate" in missing.reason
    one_class = run(cfg, metrics=with_baseline({"accuracy": 1.0}, {"accuracy": 1.0})).rules[0]
    assert one_class.verdict == "fail" and "one class only" in one_class.reason
    perfect = run(gate(baseline=BaselineRule(metric="accuracy")),
                  metrics=with_baseline({"accuracy": 1.0}, {"accuracy": 1.0})).rules[0]
    assert perfect.verdict == "skip" and "nothing to beat" in perfect.reason


def test_a_model_that_learned_nothing_fails_the_default_gate():
    """The MLP that "succeeded" with accuracy 0.0: the defaults stop it, whatever the data."""
    cfg = GateConfig()
    result = run(cfg, metrics=with_baseline({"roc_auc": 0.5, "accuracy": 0.0}, {"roc_auc": 0.5, "accuracy": 0.7}),
                 bundle=3.0)
    assert result.verdict == "fail" and [r.kind for r in result.failed()] == ["baseline"]


def test_the_default_gate_fits_data_it_was_not_tuned_for():
    """Imbalanced binary data with no slices and a slow model: no fixed number fails it."""
    metrics = with_baseline({"roc_auc": 0.71, "accuracy": 0.93, "balanced_accuracy": 0.55},
                            {"roc_auc": 0.5, "accuracy": 0.95, "balanced_accuracy": 0.5})
    result = run(GateConfig(), metrics=metrics, latency=331.0, bundle=3.0)
    assert result.verdict == "pass", result.failed()
    kinds = {r.kind: r.verdict for r in result.rules}
    assert kinds == {"baseline": "pass", "champion": "pass", "significance": "pass", "bundle_size": "pass"}


def test_a_slice_rule_for_every_slice_is_skipped_when_none_is_declared():
    rule = run(gate(ThresholdRule("accuracy", min=0.5, slice="*")), metrics={"test": {}}).rules[0]
    assert rule.verdict == "skip" and "no slices are declared" in rule.reason


@pytest.mark.parametrize(("p95", "champion_p95", "verdict"), [(3.0, 2.0, "pass"), (5.0, 2.0, "fail")])
def test_latency_ratio_against_the_champion(p95, champion_p95, verdict):
    budgets = BudgetRule(max_latency_p95_ms=None, max_latency_ratio=2.0, max_bundle_mb=None)
    cfg = gate(budgets=budgets)
    rule = run(cfg, accuracy_evidence(900, 900), latency=p95, champion_latency=champion_p95).rules[0]
    assert rule.kind == "latency_ratio" and rule.verdict == verdict and rule.value == pytest.approx(p95 / champion_p95)
    assert "v1.0.0" in rule.reason and "same run" in rule.reason
    unmeasured = run(cfg, accuracy_evidence(900, 900), latency=p95).rules[0]
    assert unmeasured.verdict == "skip" and "could not be measured" in unmeasured.reason
    alone = run(cfg, latency=p95).rules[0]
    assert alone.verdict == "skip" and "max_latency_p95_ms" in alone.reason


def regression_evidence(challenger_noise: float, champion_noise: float, n: int = 600) -> ChampionEvidence:
    rng = np.random.default_rng(11)
    y = rng.normal(150, 60, n)  # a score in its own units: rmse tolerances would depend on them
    return ChampionEvidence("v1.0.0", y, y + rng.normal(0, challenger_noise, n), y + rng.normal(0, champion_noise, n))


def test_the_default_gate_judges_a_regression_on_rmse_skill_and_r2_against_the_champion():
    metrics = {"task": "regression", "test": {"rmse": 30.0, "r2": 0.75},
               "baseline": {"strategy": "mean", "test": {"rmse": 60.0, "r2": -0.01}}}
    better = run(GateConfig(), regression_evidence(25, 35), metrics=metrics, bundle=1.0)
    assert better.verdict == "pass", better.failed()
    rules = {r.kind: r for r in better.rules}
    assert rules["baseline"].value == pytest.approx(0.5) and "test.rmse 30 vs the dummy's 60 (mean label)" in rules["baseline"].reason
    assert rules["champion"].rule.startswith("champion r2") and rules["champion"].value > 0.8
    assert "bootstrap on r2" in rules["significance"].rule and "significantly better" in rules["significance"].reason

    worse = run(GateConfig(), regression_evidence(40, 25), metrics=metrics, bundle=1.0)
    assert [r.kind for r in worse.failed()] == ["champion", "significance"]
    assert "significantly worse by more than the tolerance" in by_rule(worse)[worse.failed()[1].rule].reason

    mcnemar = gate(significance=SignificanceRule(test=SignificanceTest.mcnemar))
    refused = run(mcnemar, regression_evidence(25, 35), metrics=metrics).rules
    assert any(r.kind == "significance" and r.verdict == "fail" and "test=bootstrap" in r.reason for r in refused)


def test_a_regression_that_predicts_no_better_than_the_mean_fails_the_baseline():
    metrics = {"task": "regression", "test": {"rmse": 58.0}, "baseline": {"test": {"rmse": 60.0}}}
    rule = run(GateConfig(), metrics=metrics).rules[0]
    assert rule.kind == "baseline" and rule.verdict == "fail" and rule.value == pytest.approx(1 / 30)
