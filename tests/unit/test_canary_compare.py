"""The canary check's comparisons (gitml.delivery.compare) on synthetic logged rows, and its settings' checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gitml.config.rules_canary import canary_problems
from gitml.config.schema import CanaryConfig
from gitml.delivery.check import errors_from_metrics, latency_from_metrics
from gitml.delivery.compare import compare, psi

CFG = CanaryConfig(min_rows=100, min_labels=100, resamples=300)


def regression_rows(shift: float, n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.normal(100, 10, 2 * n)
    predicted = truth + rng.normal(0, 2, 2 * n)
    predicted[n:] += shift  # the canary's rows
    return pd.DataFrame({"model_version": ["v1"] * n + ["v2"] * n, "prediction": predicted, "label": truth})


def test_a_shifted_regression_canary_fails_on_drift_and_rmse_and_an_equal_one_passes():
    shifted = regression_rows(shift=8.0)
    verdict = compare("v1", "v2", shifted, shifted, CFG, regression=True)
    assert verdict.verdict == "rollback"
    drift, rmse = verdict.checks
    assert drift.name == "prediction_drift" and drift.failed and drift.p_value < 1e-6
    assert rmse.name == "metric:rmse" and rmse.failed and rmse.effect > 5  # rmse 2 -> ~8.2
    same = regression_rows(shift=0.0, seed=1)
    healthy = compare("v1", "v2", same, same, CFG, regression=True)
    assert healthy.verdict == "promote" and not any(c.failed for c in healthy.checks)
    few = compare("v1", "v2", same.iloc[:450], same.iloc[:450], CFG, regression=True)  # 50 canary rows
    assert few.verdict == "wait" and few.checks == [] and "v2 answered 50 rows" in few.reasons[0]


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    assert psi(np.array([50, 50]), np.array([500, 500])) == 0
    assert 0 < psi(np.array([50, 50]), np.array([60, 40])) < psi(np.array([50, 50]), np.array([90, 10]))


def test_every_bad_setting_is_named():
    bad = CanaryConfig(min_rows=0, alpha=1.5, metric="nope", max_metric_drop=0.2, hard_metric_drop=0.1)
    keys = [key for key, _ in canary_problems(bad)]
    assert keys == ["canary.min_rows", "canary.alpha", "canary.metric", "canary.hard_metric_drop"]
    assert canary_problems(CanaryConfig()) == []


def test_latency_per_version_from_metrics_leaves_out_the_shadow_and_other_models():
    text = "\n".join([
        'gitml_predict_duration_seconds_sum{model="churn",model_version="v1",role="stable"} 2.0',
        'gitml_predict_duration_seconds_count{model="churn",model_version="v1",role="stable"} 100.0',
        'gitml_predict_duration_seconds_sum{model="churn",model_version="v2",role="canary"} 3.0',
        'gitml_predict_duration_seconds_count{model="churn",model_version="v2",role="canary"} 50.0',
        'gitml_predict_duration_seconds_sum{model="churn",model_version="v2",role="explicit"} 1.0',
        'gitml_predict_duration_seconds_count{model="churn",model_version="v2",role="explicit"} 50.0',
        'gitml_predict_duration_seconds_sum{model="churn",model_version="v3",role="shadow"} 9.0',
        'gitml_predict_duration_seconds_count{model="churn",model_version="v3",role="shadow"} 1.0',
        'gitml_predict_duration_seconds_sum{model="fraud",model_version="v1",role="stable"} 50.0',
        'gitml_predict_duration_seconds_count{model="fraud",model_version="v1",role="stable"} 1.0',
    ])
    assert latency_from_metrics(text, "churn") == {"v1": 0.02, "v2": 0.04}
    verdict = compare("v1", "v2", regression_rows(0.0), regression_rows(0.0), CFG, regression=True,
                      latency={"v1": 0.02, "v2": 0.04})
    assert verdict.verdict == "rollback" and verdict.checks[-1].name == "latency" and verdict.checks[-1].effect == 2


def test_a_bad_canary_setting_is_refused_when_params_are_composed(conf_dir):
    from gitml.config.compose import compose
    from gitml.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'canary.alpha': 1.5 must be between 0 and 1"):
        compose(conf_dir, ["canary.alpha=1.5"])


def test_a_canary_failing_more_often_is_rolled_back_on_the_servers_own_counters():
    """The server counts each failed prediction by version (gitml_predict_failures_total); the check
    reads failures and answers per version from the same text a scrape of /metrics returns."""
    from prometheus_client import generate_latest

    from gitml.serve.metrics import ServeMetrics

    metrics = ServeMetrics()
    for _ in range(900):
        metrics.timed("churn", "v1", "stable", 0.001)
    for _ in range(95):
        metrics.timed("churn", "v2", "canary", 0.001)
    for _ in range(2):
        metrics.failed("churn", "v1", "stable")
    for _ in range(8):
        metrics.failed("churn", "v2", "canary")
    metrics.failed("churn", "v3", "shadow")  # a shadow's failure is no answer's
    errors = errors_from_metrics(generate_latest(metrics.registry).decode(), "churn")
    assert errors == {"v1": (2, 902), "v2": (8, 103)}
    verdict = compare("v1", "v2", regression_rows(0.0), regression_rows(0.0), CFG, regression=True, errors=errors)
    check = verdict.checks[-1]
    assert check.name == "error_rate" and check.failed and check.hard  # 7.8% vs 0.2%, p < 0.05
    assert verdict.verdict == "rollback"
    same = compare("v1", "v2", regression_rows(0.0), regression_rows(0.0), CFG, regression=True,
                   errors={"v1": (2, 902), "v2": (0, 100)})
    assert not same.checks[-1].failed
