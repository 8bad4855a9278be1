"""Bring your own model, end to end: a repository's own torch module and its own scikit-learn
pipeline step, named only by `_target_` in its own conf/model file, train under `dvc repro`,
pass the gate, predict a file with `gitml predict` and answer through `gitml serve`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import pandas as pd
import pytest

from gitml.models import TRUSTED_ENV
from tests.conftest import TINY_OVERRIDES, copy_project, run
from tests.integration.serve.conftest import Server
from tests.repo_classes import CLIPPER

pytestmark = pytest.mark.slow

NET = """
    from torch import nn


    class TwoLayer(nn.Module):
        '''The repository's own network: gitml passes n_features and n_classes.'''

        def __init__(self, n_features, n_classes, hidden=32):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

        def forward(self, x):
            return self.net(x)
"""
NET_CONF = """
    defaults:
      - base_torch_module
      - _self_
    module:
      _target_: models_ext.nets.TwoLayer
      hidden: 32
    optimizer:
      _target_: torch.optim.AdamW
      _partial_: true
      lr: 0.01
    class_weight: balanced
    allowed_targets: [models_ext.nets.TwoLayer]
"""
PIPELINE_CONF = """
    defaults:
      - base_sklearn
      - _self_
    estimator:
      _target_: sklearn.pipeline.Pipeline
      steps:
        - [scale, {_target_: sklearn.preprocessing.StandardScaler}]
        - [clip, {_target_: models_ext.features.Clipper, limit: 3.0}]
        - [classify, {_target_: sklearn.linear_model.LogisticRegression, max_iter: 1000}]
    class_weight: balanced
    allowed_targets: [models_ext.features.Clipper]
    trusted_types: [models_ext.features.Clipper]
"""
CASES = {  # option: (module file, its source, the config, the class, the model file it writes)
    "my_net": ("nets.py", NET, NET_CONF, "models_ext.nets.TwoLayer", "model.safetensors"),
    "my_pipeline": ("features.py", CLIPPER, PIPELINE_CONF, "models_ext.features.Clipper", "model.skops"),
}


@pytest.mark.parametrize("option", sorted(CASES))
def test_a_repository_model_trains_gates_predicts_and_serves(option, reproduced_template, tmp_path, gitml_main,
                                                             monkeypatch):
    filename, source, conf, name, weights = CASES[option]
    project = copy_project(reproduced_template, tmp_path / "project")
    (project / "models_ext").mkdir()
    (project / "models_ext/__init__.py").write_text("")
    (project / "models_ext" / filename).write_text(textwrap.dedent(source).lstrip())
    (project / f"conf/model/{option}.yaml").write_text(textwrap.dedent(conf).lstrip())
    gitml_main("config", "compose", *TINY_OVERRIDES, f"model={option}", "trainer.epochs=20",
               "trainer.batch_size=32", cwd=project)

    out = run("dvc", "repro", cwd=project)  # `gitml train` etc. run as console scripts, not from the repo
    assert "Running stage 'train'" in out.stdout and "Running stage 'gate'" in out.stdout
    assert (project / "models/bundle/model" / weights).is_file()
    gate = json.loads((project / "reports/gate.json").read_text())
    assert gate["verdict"] == "pass", [r for r in gate["rules"] if r["verdict"] != "pass"]
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["test"]["roc_auc"] > 0.9

    rows = pd.read_parquet(project / "data/prepared/test.parquet").drop(columns=["target"]).head(5)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    refused = run("gitml", "predict", tmp_path / "rows.csv", "-o", tmp_path / "scored.csv", cwd=project, check=False)
    assert refused.returncode == 1 and name in refused.stderr and TRUSTED_ENV in refused.stderr  # no config read
    run("gitml", "predict", tmp_path / "rows.csv", "-o", tmp_path / "scored.csv", cwd=project,
        env={TRUSTED_ENV: name})
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert len(scored) == 5 and set(scored["prediction"]) <= {0, 1}

    monkeypatch.setenv(TRUSTED_ENV, name)  # the server process inherits it
    server = Server(project, "--bundle", "models/bundle")
    try:
        body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
        answer = httpx.post(f"{server.wait_ready().url}/invocations", json=body, timeout=30)
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    assert [p["prediction"] for p in answer.json()["predictions"]] == scored["prediction"].tolist()


def test_the_shipped_examples_are_listed_nowhere_but_gitmls_registry():
    """conf/model/torch_custom.yaml and sklearn_pipeline.yaml need no allowed_targets or trusted_types."""
    import yaml

    root = Path(__file__).resolve().parents[2]
    for option in ("torch_custom", "sklearn_pipeline"):
        conf = yaml.safe_load((root / f"conf/model/{option}.yaml").read_text())
        assert conf["allowed_targets"] == [] and conf.get("trusted_types", []) == []
