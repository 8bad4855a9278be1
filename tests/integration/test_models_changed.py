"""``gitml models changed``: the models a change touched, on real git history in a tmp repository.

dvc.yaml is the real several-model pipeline (the reference dvc.yaml repeated per model);
params.yaml and dvc.lock are written by hand, small, in the shapes DVC and `gitml config
compose` write. One test takes the real lock of the reproduced reference instance and
checks the answer against `dvc status`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gitml.ci.changed import changed_models
from gitml.errors import UsageError
from gitml.scaffold.several import several_models_pipeline
from tests.projects import ROOT, TINY_OVERRIDES, copy_project, git, run

STAGES = ("ingest", "validate", "prepare", "train", "evaluate", "package", "gate")


def section(name: str, epochs: int = 3) -> dict:
    return {"data": {"target": "y", "task": "binary"}, "trainer": {"epochs": epochs},
            "serve": {"port": 8080}, "registry": {"model": name}, "paths": {"bundle": f"models/{name}/bundle"}}


def lock_entry(stage: str, name: str, md5: str = "0" * 32) -> dict:
    return {"cmd": f"gitml {stage} --params params.yaml --model {name}",
            "deps": [{"path": f"data/{name}/raw", "md5": md5 + ".dir"}],
            "params": {"params.yaml": {f"models.{name}.data.target": "y"}}}


def write(root: Path, params: dict, lock: dict, pipeline: str | None = None) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": lock}, sort_keys=False))
    if pipeline is not None:
        (root / "dvc.yaml").write_text(pipeline)


def commit(root: Path, message: str) -> str:
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", message, cwd=root)
    return git("rev-parse", "HEAD", cwd=root).stdout.strip()


@pytest.fixture
def several(tmp_path: Path) -> Path:
    """A committed repository of models a, b and c: params.yaml, dvc.lock, dvc.yaml, conf/models/."""
    root = tmp_path / "repo"
    (root / "conf/models").mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=root)
    for name in "abc":
        (root / f"conf/models/{name}.yaml").write_text("# @package _global_\ndefaults:\n  - override /paths: model\n")
    params = {"data": {"target": "y"}, "serve": {"port": 8080}, "models": {n: section(n) for n in "abc"}}
    lock = {f"{stage}@{n}": lock_entry(stage, n) for n in "abc" for stage in STAGES}
    write(root, params, lock, several_models_pipeline((ROOT / "dvc.yaml").read_text()))
    commit(root, "three models")
    return root


def edit(root: Path, change) -> None:
    """Apply ``change(params, lock)`` to the files in the working tree."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    change(params, lock)
    write(root, params, lock)


def test_a_reproduced_stage_of_one_model_touches_that_model_alone(several: Path):
    edit(several, lambda params, lock: lock["train@b"]["deps"][0].update(md5="1" * 32 + ".dir"))
    found = changed_models(several, "HEAD")
    assert found.names == ["b"] and found.models["b"] == ["dvc.lock: train@b"] and found.everything is None
    head = commit(several, "retrain b")  # the same answer between two commits
    assert changed_models(several, "HEAD^1", head).names == ["b"]
    assert changed_models(several, "HEAD").names == []  # the working tree is HEAD


def test_a_param_a_stage_declares_counts_and_one_no_stage_reads_does_not(several: Path):
    edit(several, lambda params, lock: params["models"]["a"]["trainer"].update(epochs=9))
    assert changed_models(several, "HEAD").models == {"a": ["params.yaml models.a: trainer"]}
    git("checkout", "-q", "--", "params.yaml", cwd=several)
    edit(several, lambda params, lock: params["models"]["c"]["serve"].update(port=9090))
    assert changed_models(several, "HEAD").names == []  # DVC would rerun nothing; promote nothing
    edit(several, lambda params, lock: params["serve"].update(port=1))  # the shared top level
    assert changed_models(several, "HEAD").names == []


def test_editing_what_a_model_file_says_touches_that_model_but_a_comment_does_not(several: Path):
    path = several / "conf/models/c.yaml"
    original = path.read_text()
    path.write_text(original + "# retrain c with more data next quarter\n")  # no new version for a comment
    (several / "conf/models/b.yaml").write_text(original.replace("defaults:\n  - ", "defaults: [") + "]\n")
    assert changed_models(several, "HEAD").names == []  # b: the same list, written another way
    path.write_text(original + "trainer:\n  epochs: 9\n")
    assert changed_models(several, "HEAD").models == {"c": ["conf/models/c.yaml"]}
    git("commit", "-qam", "c: 9 epochs", cwd=several)
    path.write_text("defaults: [\n")  # YAML cannot read it: counted, for CI to show the error
    assert changed_models(several, "HEAD").models == {"c": ["conf/models/c.yaml"]}
    assert changed_models(several, "HEAD~1", "HEAD").models == {"c": ["conf/models/c.yaml"]}


def test_a_change_to_dvc_yaml_touches_every_model_but_a_comment_does_not(several: Path):
    text = (several / "dvc.yaml").read_text()
    (several / "dvc.yaml").write_text("# a comment changes no stage\n" + text)
    assert changed_models(several, "HEAD").names == []
    (several / "dvc.yaml").write_text(text.replace("--model ${key} --out", "--model ${key} --verbose --out", 1))
    found = changed_models(several, "HEAD")
    assert found.names == ["a", "b", "c"] and "dvc.yaml" in (found.everything or "")


def test_a_new_model_is_changed_a_removed_one_is_not_listed_and_a_shared_stage_counts_for_none(several: Path):
    def add_d_drop_c(params, lock):
        params["models"]["d"] = section("d")
        del params["models"]["c"]
        lock.update({f"{stage}@d": lock_entry(stage, "d") for stage in STAGES})
        for stage in STAGES:
            del lock[f"{stage}@c"]
        lock["download"] = {"cmd": "curl ...", "outs": [{"path": "data/external/x.csv", "md5": "f" * 32}]}

    edit(several, add_d_drop_c)
    found = changed_models(several, "HEAD")
    assert found.names == ["d"] and found.models["d"][0].startswith("new model")


def test_with_merge_base_what_the_base_branch_did_since_does_not_count(several: Path):
    git("checkout", "-q", "-b", "pr", cwd=several)
    edit(several, lambda params, lock: lock["train@b"].update(cmd="changed"))
    commit(several, "pr: b")
    git("checkout", "-q", "main", cwd=several)
    edit(several, lambda params, lock: lock["train@a"].update(cmd="changed"))
    commit(several, "main moved on: a")
    git("checkout", "-q", "pr", cwd=several)
    assert changed_models(several, "main").names == ["a", "b"]  # main's a looks reverted by the PR
    assert changed_models(several, "main", merge_base=True).names == ["b"]


def test_a_one_model_repository_names_its_model_or_nothing(tmp_path: Path, gitml_main):
    root = tmp_path / "one"
    root.mkdir()
    git("init", "-q", "-b", "main", cwd=root)
    write(root, section("churn"), {stage: lock_entry(stage, "churn") for stage in STAGES},
          (ROOT / "dvc.yaml").read_text())
    commit(root, "one model")
    assert gitml_main("models", "changed", "--base", "HEAD", cwd=root).stdout == ""
    edit(root, lambda params, lock: params["serve"].update(port=1))
    assert gitml_main("models", "changed", "--base", "HEAD", cwd=root).stdout == ""
    edit(root, lambda params, lock: lock["gate"].update(cmd="changed"))
    assert gitml_main("models", "changed", "--base", "HEAD", cwd=root).stdout == "churn\n"
    shown = json.loads(gitml_main("models", "changed", "--base", "HEAD", "--json", cwd=root).stdout)
    assert shown["models"] == {"churn": ["dvc.lock: gate"]} and shown["head"] == "working tree"


def test_a_base_that_is_no_commit_is_a_usage_error_naming_it(several: Path, gitml_main):
    with pytest.raises(UsageError, match="'origin/nope' is not a commit"):
        changed_models(several, "origin/nope")
    result = gitml_main("models", "changed", "--base", "origin/nope", cwd=several, check=False)
    assert result.returncode == 2 and "origin/nope" in result.stderr


@pytest.mark.slow
def test_on_a_reproduced_lock_it_agrees_with_dvc_status(reproduced_template: Path, tmp_path: Path):
    """The real dvc.lock and params.yaml of the reproduced reference instance (one model)."""
    project = copy_project(reproduced_template, tmp_path / "project")
    name = yaml.safe_load((project / "params.yaml").read_text())["registry"]["model"]
    run("gitml", "config", "compose", *TINY_OVERRIDES, "serve.port=9191", cwd=project)
    assert changed_models(project, "HEAD").names == []
    assert "up to date" in run("dvc", "status", cwd=project).stdout
    run("gitml", "config", "compose", *TINY_OVERRIDES, "trainer.epochs=4", cwd=project)
    reasons = changed_models(project, "HEAD").models
    assert list(reasons) == [name] and "trainer" in reasons[name][0]  # and `model` (the mlp's T_max follows epochs)
    assert "train:" in run("dvc", "status", cwd=project).stdout
