"""``gitml exp best``'s choice, on the shape `dvc exp show --json` prints (DVC 3), and
``gitml exp search``'s parameters and best point."""

from __future__ import annotations

import pytest

from gitml.errors import GitmlError
from gitml.gitops.experiments import (
    BestExperiment,
    Experiment,
    direction,
    pick_best,
    rank,
    ranking_markdown,
    read_experiments,
)
from gitml.gitops.search import Param, SearchResult, summary_lines

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


@pytest.mark.parametrize(("text", "expected"), [
    ("model.dropout=float:0:0.5", Param("model.dropout", "float", 0.0, 0.5)),
    ("model.optimizer.lr=float:1e-4:1e-1:log", Param("model.optimizer.lr", "float", 1e-4, 0.1, log=True)),
    ("trainer.epochs=int:2:30", Param("trainer.epochs", "int", 2.0, 30.0)),
    ("model=choice:mlp,hgb", Param("model", "choice", choices=("mlp", "hgb"))),
])
def test_a_search_parameter_reads_its_range(text, expected):
    assert Param.parse(text) == expected


@pytest.mark.parametrize(("text", "match"), [
    ("model.dropout", "expected KEY=float"), ("x=normal:0:1", "expected KEY=float"), ("x=float:1", "expected"),
    ("x=float:0.5:0.1", "LOW < HIGH"), ("x=float:0:1:log", "LOW > 0"),
])
def test_a_bad_search_parameter_is_refused_saying_the_forms(text, match):
    with pytest.raises(GitmlError, match=match):
        Param.parse(text)


def test_the_search_s_best_point_passed_its_gate():
    result = SearchResult("test.rmse", minimize=True, points=[
        ("gitml-search-0", {"x": 1}, Experiment("gitml-search-0", "r0", "pass", 9.0)),
        ("gitml-search-1", {"x": 2}, Experiment("gitml-search-1", "r1", "fail", 1.0)),
        ("gitml-search-2", {"x": 3}, None),  # its stage failed
        ("gitml-search-3", {"x": 4}, Experiment("gitml-search-3", "r3", "pass", 8.5))])
    assert result.best is not None and result.best[0] == "gitml-search-3"
    lines = summary_lines(result)
    assert lines[3].startswith("* gitml-search-3: x=4 -> test.rmse 8.5, gate pass") and "failed" in lines[2]

