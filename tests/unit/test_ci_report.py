"""The pull-request report's confusion table and `gitml summary`'s metrics line, for either task."""

from __future__ import annotations

import json

from gitml.ci.report import confusion_table
from gitml.ci.summary import render_summary
from gitml.config.paths import PathsConfig


def test_the_confusion_table_counts_pairs_and_is_absent_for_a_regression(tmp_path):
    plots = tmp_path / "confusion.csv"
    plots.write_text("actual,predicted\nno,no\nno,yes\nyes,yes\nyes,yes\n")
    assert confusion_table(plots) == ("| actual \\ predicted | no | yes |\n| --- | ---: | ---: |\n"
                                      "| **no** | 1 | 1 |\n| **yes** | 0 | 2 |")
    plots.write_text("actual,predicted\n")  # what evaluate writes for a regression model
    assert confusion_table(plots) is None
    assert confusion_table(tmp_path / "missing.csv") is None


def test_the_summary_shows_the_regression_metrics(tmp_path):
    paths = PathsConfig()
    metrics = tmp_path / paths.metrics
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"task": "regression", "test": {"n": 89, "rmse": 56.2149, "mae": 46.8, "r2": 0.408}}))
    assert "metrics  test: rmse 56.2149, mae 46.8000, r2 0.4080" in render_summary(paths, tmp_path)


def test_the_summary_says_how_the_model_trained(tmp_path):
    paths = PathsConfig()
    train = tmp_path / paths.train_summary
    train.parent.mkdir(parents=True)
    base = {"family": "torch_mlp", "device": "cpu", "epochs": 4, "resumed_from_epoch": None}
    train.write_text(json.dumps({"train": {**base, "ranks": 1, "streamed": False}}))
    assert "train    torch_mlp on cpu: 4 epoch(s)\n" in render_summary(paths, tmp_path) + "\n"
    train.write_text(json.dumps({"train": {**base, "ranks": 2, "streamed": True, "resumed_from_epoch": 2}}))
    assert ("train    torch_mlp on cpu: 4 epoch(s), 2 ranks, streamed from row groups, resumed after epoch 2"
            in render_summary(paths, tmp_path))
