"""Several models in one repository: conf/models/<name>.yaml composed into params.yaml `models`,
read back per model, and the one-model dvc.yaml repeated per model (gitml.config.models,
gitml.scaffold.several)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gitml.config.compose import check_params, compose_project, render_params
from gitml.config.params import load_params, load_sections
from gitml.errors import ConfigError, ParamsOutOfSync, UsageError
from gitml.scaffold.several import model_file, parse_spec, several_models_pipeline
from tests.conftest import ROOT

MODELS = {"churn": ("breast_cancer", "logreg"), "quality": ("wine", "hgb"), "price": ("diabetes", "ridge")}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of conf/ declaring three models: two classifiers and a regression."""
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    (conf / "models").mkdir()
    for name, (data, model) in MODELS.items():
        (conf / "models" / f"{name}.yaml").write_text(model_file(name, data, model))
    return conf


def write_params(conf: Path, overrides: list[str] | None = None) -> Path:
    params = conf.parent / "params.yaml"
    params.write_text(render_params(compose_project(conf, overrides or []), overrides or []))
    return params


def test_each_model_composes_its_own_choices_over_the_shared_defaults_with_its_own_layout(tree: Path):
    project = compose_project(tree, ["trainer.epochs=3"])
    assert sorted(project["models"]) == ["churn", "price", "quality"]
    price = project["models"]["price"]
    assert price["data"]["name"] == "diabetes" and price["model"]["estimator"]["_target_"].endswith("Ridge")
    assert price["registry"]["model"] == "price"
    assert price["paths"]["bundle"] == "models/price/bundle" and price["paths"]["raw"] == "data/price/raw"
    assert price["paths"]["external"] == "data/external"  # source files are shared
    assert price["trainer"]["epochs"] == 3 and project["trainer"]["epochs"] == 3  # overrides apply to all
    # The top level stays the shared defaults, unchanged.
    assert project["data"]["name"] == "breast_cancer" and project["paths"]["bundle"] == "models/bundle"


def test_a_command_reads_the_model_it_names_and_refuses_to_guess(tree: Path):
    params = write_params(tree)
    assert load_params(params, "quality").data.name == "wine"
    assert load_params(params, "quality").paths.gate == "reports/quality/gate.json"
    with pytest.raises(UsageError, match=r"declares 3 models \(churn, price, quality\): name one with --model"):
        load_params(params)
    with pytest.raises(ConfigError, match=r"'models.fraud': no model named 'fraud'. Declared: churn, price, quality"):
        load_params(params, "fraud")
    # The server reads its settings from the shared top level.
    assert load_sections(params, ("serve",)).serve.port == load_params(params, "churn").serve.port


def test_a_one_model_params_file_accepts_its_own_name_only(tmp_path: Path):
    params = ROOT / "params.yaml"
    assert load_params(params, "model").registry.model == "model"
    with pytest.raises(ConfigError, match="has one model, 'model', not 'churn'"):
        load_params(params, "churn")


def test_editing_one_model_file_puts_params_out_of_sync_naming_that_models_key(tree: Path):
    params = write_params(tree)
    assert check_params(tree, params).overrides == []
    churn = tree / "models" / "churn.yaml"
    churn.write_text(churn.read_text() + "trainer:\n  epochs: 7\n")
    with pytest.raises(ParamsOutOfSync, match=r"models\.churn\.trainer\.epochs"):
        check_params(tree, params)


def test_a_bad_model_file_is_named_with_its_key(tree: Path):
    (tree / "models" / "churn.yaml").write_text(model_file("churn", "breast_cancer", "logreg") + "trainer:\n  epochz: 1\n")
    with pytest.raises(ConfigError, match=r"conf/models/churn\.yaml.*trainer\.epochz"):
        compose_project(tree)


def test_many_models_compose_in_several_processes_to_what_one_process_gives(tree: Path, monkeypatch):
    """Past models.PER_WORKER models per process, the models are shared out (fork): the same result, in
    name order, and a model that does not compose is still named with its file and key."""
    from gitml.config import models

    for i in range(7):
        (tree / "models" / f"m{i}.yaml").write_text(model_file(f"m{i}", "wine", "hgb") + f"trainer:\n  seed: {i}\n")
    import concurrent.futures
    import threading

    pools = []

    class Pool(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(models.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # as the CLI (pytest-xdist runs threads)
    one = models.compose_models(tree)
    assert pools == []
    monkeypatch.setattr(models, "PER_WORKER", 4)  # 10 models: 2 processes
    forked = models.compose_models(tree)
    assert pools == [2]
    assert list(forked) == list(one) == sorted(one) and forked == one
    assert [forked[f"m{i}"]["trainer"]["seed"] for i in range(7)] == list(range(7))
    (tree / "models" / "m5.yaml").write_text(model_file("m5", "wine", "hgb") + "trainer:\n  epochs: lots\n")
    with pytest.raises(ConfigError) as info:
        models.compose_models(tree)
    assert info.value.file == str(tree / "models" / "m5.yaml") and info.value.key == "trainer.epochs"


def test_two_models_writing_the_same_place_are_refused_naming_the_file_and_key(tree: Path):
    (tree / "models" / "quality.yaml").write_text("# @package _global_\ndefaults:\n  - override /data: wine\n")
    (tree / "models" / "price.yaml").write_text("# @package _global_\ndefaults:\n  - override /data: diabetes\n")
    with pytest.raises(ConfigError, match=r"models/quality\.yaml: 'paths\.raw'.*model 'price'.*override /paths: model"):
        compose_project(tree)


@pytest.mark.parametrize("name", ["Churn", "1st", "a/b", "x" * 65])
def test_a_model_name_must_be_a_path_segment_a_tag_name_and_a_url_segment(tree: Path, name: str):
    with pytest.raises((ConfigError, UsageError), match="not valid"):
        parse_spec(name, tree)


def test_a_spec_names_existing_data_and_model_options(tree: Path):
    assert parse_spec("churn:breast_cancer:hgb", tree) == ("churn", "breast_cancer", "hgb")
    assert parse_spec("churn", tree) == ("churn", None, None)
    with pytest.raises(UsageError, match="model option 'xgboost' is not one of"):
        parse_spec("churn:breast_cancer:xgboost", tree)


def test_the_pipeline_repeats_every_stage_per_model_with_its_own_paths_and_params():
    text = several_models_pipeline((ROOT / "dvc.yaml").read_text())
    stages = yaml.safe_load(text)["stages"]
    one = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert list(stages) == list(one)
    for name, stage in stages.items():
        assert stage["foreach"] == "${models}"
        body = stage["do"]
        assert "--params params.yaml --model ${key}" in body["cmd"]
        assert body["params"] == [f"models.${{key}}.{p}" for p in one[name]["params"]]
        assert "${paths." not in text and "${item.paths." in body["cmd"]
    with pytest.raises(UsageError, match="already repeated"):
        several_models_pipeline(text)


def test_dvc_itself_reads_one_stage_chain_per_model(tree: Path):
    """DVC expands the generated dvc.yaml over params.yaml's models: train@churn ... gate@quality."""
    root = tree.parent
    write_params(tree)
    (root / "dvc.yaml").write_text(several_models_pipeline((ROOT / "dvc.yaml").read_text()))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([shutil.which("dvc") or "dvc", "init", "-q"], cwd=root, check=True)
    listed = subprocess.run([shutil.which("dvc") or "dvc", "stage", "list", "--name-only"], cwd=root,
                            check=True, capture_output=True, text=True).stdout.split()
    assert sorted(listed) == sorted(f"{stage}@{model}" for stage in yaml.safe_load(
        (ROOT / "dvc.yaml").read_text())["stages"] for model in MODELS)


def test_adding_a_model_to_a_one_model_project_keeps_its_model_with_the_overrides_it_was_composed_with(tmp_path):
    from gitml import api
    from tests.projects import git

    project = tmp_path / "p"
    api.init(project)
    api.compose_params(project / "conf", ["model=logreg", "trainer.epochs=3"], project / "params.yaml")
    lines = api.add_models(["price:diabetes:ridge"], project)
    assert "its model is now conf/models/model.yaml" in lines
    params = project / "params.yaml"
    assert check_params(project / "conf", params).overrides == []  # the overrides moved into model.yaml
    kept = load_params(params, "model")
    assert kept.model.family == "sklearn" and kept.trainer.epochs == 3 and kept.paths.production == "data/production"
    assert load_params(params, "price").data.name == "diabetes"
    assert "enabled = false" in (project / ".dvc/config").read_text()  # dvc exp run would drop `models`
    assert "foreach: ${models}" in (project / "dvc.yaml").read_text()

    before = {p: p.read_bytes() for p in (params, project / "dvc.yaml")}
    with pytest.raises(UsageError, match="price is already declared"):
        api.add_models(["price:wine"], project)
    assert before == {p: p.read_bytes() for p in before}
    assert git("status", "--porcelain", "conf/models", cwd=project).stdout.count("\n") == 1  # conf/models/ is new


def test_init_with_models_writes_a_repository_of_exactly_those_models_committed(tmp_path):
    from gitml import api
    from tests.projects import git

    project = tmp_path / "q"
    api.init(project, models=["churn:breast_cancer:logreg", "price:diabetes:ridge"])
    assert sorted(p.name for p in (project / "conf/models").iterdir()) == ["churn.yaml", "price.yaml"]
    assert git("status", "--porcelain", cwd=project).stdout == ""
    assert git("log", "--format=%s", cwd=project).stdout.splitlines()[0].startswith("gitml models add churn")
    assert api.list_models(project / "params.yaml", names_only=True) == ["churn", "price"]
    assert (project / "data/price/production/README.md").is_file()
    plots = yaml.safe_load((project / "dvc.yaml").read_text())["plots"]  # each model's drift history
    assert [next(iter(p)) for p in plots][::2] == ["Drift history: reports/churn/drift", "Drift history: reports/price/drift"]
    api.add_models(["quality:wine"], project)  # the section is rewritten, not appended to
    plots = yaml.safe_load((project / "dvc.yaml").read_text())["plots"]
    assert len(plots) == 6 and "Drift history: reports/quality/drift" in plots[4]
    artifacts = yaml.safe_load((project / "artifacts.yaml").read_text())  # GTO's declarations, one per model
    assert {name: a["path"] for name, a in artifacts.items()} == {"churn": "models/churn/bundle",
                                                                  "price": "models/price/bundle",
                                                                  "quality": "models/quality/bundle"}
    checks = {f"{c.section} {c.name}": c for c in api.doctor(project)}
    assert checks["dvc hydra"].status == "ok" and "several models" in checks["dvc hydra"].detail
    assert checks["config params"].detail.endswith("3 models (churn: sklearn, price: sklearn, quality: torch_mlp)")
    assert checks["registry artifact"].detail == "all 3 models declared in artifacts.yaml"
    assert checks["registry stage prod"].detail.startswith("0 of 3 models hold a version")
