"""``gitml exp best``'s choice, on the shape `dvc exp show --json` prints (DVC 3)."""

from __future__ import annotations

import pytest

from gitml.errors import GitmlError
from gitml.gitops.experiments import (
    BestExperiment,
    direction,
    pick_best,
    rank,
    ranking_markdown,
    read_experiments,
)

HEAD = "bd5613ee" + "0" * 32


def point(name: str, verdict: str | None, scores: dict, error: dict | None = None) -> dict:
    metrics = {"reports/metrics.json": {"data": {"test": scores}}}
    if verdict is not None:
        metrics["reports/gate.json"] = {"data": {"verdict": verdict}}
    return {"revs": [{"rev": f"{name}-rev", "name": name, "error": error,
                      "data": {"metrics": metrics, "params": {"params.yaml": {"data": {"trainer": {"epochs": 3}}}}}}],
            "executor": None, "name": name}


SHOWN = [
    {"rev": "workspace", "name": None, "data": {}, "error": None, "experiments": None},
    {"rev": HEAD, "name": "main", "data": {}, "error": None, "experiments": [
        point("fast", "pass", {"roc_auc": 0.97, "rmse": 9.0}),
        point("best-but-failed", "fail", {"roc_auc": 0.999}),
        point("slow", "pass", {"roc_auc": 0.98, "rmse": 8.0}),
        point("crashed", "pass", {"roc_auc": 0.995}, error={"msg": "stage train failed"}),
        point("no-gate", None, {"roc_auc": 0.99}),
        point("nan", "pass", {"roc_auc": float("nan")}),
    ]},
    {"rev": "another-branch", "name": "other", "experiments": [point("elsewhere", "pass", {"roc_auc": 1.0})]},
]


def test_the_best_is_the_highest_that_passed_its_gate_on_this_commit():
    found = read_experiments(SHOWN, HEAD, "reports/metrics.json", "reports/gate.json", "test.roc_auc")
    assert [e.name for e in found] == ["fast", "best-but-failed", "slow", "crashed", "no-gate", "nan"]
    assert found[3].verdict is None and found[5].value is None and found[0].params == {"trainer": {"epochs": 3}}
    assert [e.name for e in rank(found, "test.roc_auc", minimize=False)] == ["slow", "fast"]
    assert pick_best(found, "test.roc_auc", False, HEAD).name == "slow"


def test_lower_is_better_metrics_are_minimised_unless_told():
    assert direction("test.rmse", None) and direction("test.log_loss", None)
    assert not direction("test.roc_auc", None) and not direction("test.rmse", False)
    found = read_experiments(SHOWN, HEAD, "reports/metrics.json", "reports/gate.json", "test.rmse")
    assert pick_best(found, "test.rmse", True, HEAD).name == "slow"


def test_no_passing_experiment_is_an_error_listing_each():
    found = read_experiments(SHOWN[:2], HEAD, "reports/metrics.json", "reports/gate.json", "test.pr_auc")
    with pytest.raises(GitmlError, match=r"No experiment of commit bd5613e passed its gate.*fast: gate pass, test.pr_auc None"):
        pick_best(found, "test.pr_auc", False, HEAD)
    with pytest.raises(GitmlError, match=r"queue a sweep first"):
        pick_best([], "test.roc_auc", False, HEAD)


def test_the_pull_request_body_ranks_every_experiment():
    found = read_experiments(SHOWN, HEAD, "reports/metrics.json", "reports/gate.json", "test.roc_auc")
    ranked = rank(found, "test.roc_auc", False)
    body = ranking_markdown(BestExperiment(ranked[0], ranked + [e for e in found if e not in ranked],
                                           "test.roc_auc", False, "exp/slow"))
    assert "**slow** (0.98)" in body and "| **slow** | 0.98 | pass |" in body
    assert "| best-but-failed | 0.999 | fail |" in body and "`exp/slow`" in body
